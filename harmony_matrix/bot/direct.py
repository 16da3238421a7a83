"""Direct-message rooms: one per member, made once and reused, and known to nio.

A member's direct room is created with ``is_direct`` and the ``private_chat`` preset
(``trusted_private_chat`` would make the member a co-creator of a room version 12 room,
with unlimited power), encrypted, and the member is invited with ``is_direct`` in the
invitation so their client shows a direct chat. It is recorded in the database and in
the bot's ``m.direct`` account data (which nio cannot write: a raw request, merged with
what is there).

A message sent to a member who has only been invited must still be readable when they
join: nio shares a room key with every device of ``room.users``, which holds invited
members as well as joined ones, but only for members it knows. A room nio has not seen
in a sync yet (just created, or the sender started without syncing) is therefore loaded
from the room's state (members joined and invited, and whether it is encrypted), and
the members' devices are queried, before anything is sent to it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from nio import (
    AsyncClient,
    ErrorResponse,
    JoinResponse,
    MatrixRoom,
    RoomCreateResponse,
    RoomGetStateResponse,
)
from nio.api import Api, RoomPreset

from harmony_matrix.services import delivery
from harmony_matrix.services.context import ServiceContext

log = logging.getLogger(__name__)

MEGOLM = {"algorithm": "m.megolm.v1.aes-sha2"}
INVITE_BLOCKED = "M_INVITE_BLOCKED"
#: Errors that will not go away by trying again (the user does not exist, or the ID is bad).
PERMANENT_ERRORS = {"M_NOT_FOUND", "M_UNKNOWN_USER", "M_INVALID_PARAM", "M_USER_DEACTIVATED"}


class DeliveryFailure(Exception):
    """Sending failed; ``reason`` is an operator's text (error codes, never a body)."""

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: timedelta | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        return self.retry_after is not None


class RoomLost(Exception):
    """The bot is not in a room it recorded (it was removed): a new one is needed."""


class InviteBlocked(DeliveryFailure):
    """The member's homeserver refused the bot's invitation on their behalf."""


def failure(response: ErrorResponse, what: str) -> DeliveryFailure:
    """The failure a homeserver's error response means for delivery."""
    code = response.status_code or ""
    reason = f"{what}: {code} {response.message}".strip()
    if code == INVITE_BLOCKED:
        return InviteBlocked(reason, permanent=True)
    if code == "M_LIMIT_EXCEEDED":
        return DeliveryFailure(
            reason, retry_after=timedelta(milliseconds=response.retry_after_ms or 5000)
        )
    return DeliveryFailure(reason, permanent=code in PERMANENT_ERRORS)


async def raw_request(
    client: AsyncClient,
    method: str,
    path: list[str],
    body: dict[str, Any] | None = None,
    *,
    base: str = "/_matrix/client/v3",
) -> tuple[int, dict[str, Any]]:
    """A client-server request nio has no method for: (HTTP status, JSON body)."""
    response = await client.send(
        method,
        Api._build_path(path, base_path=base),
        json.dumps(body) if body is not None else None,
        headers={
            "Authorization": f"Bearer {client.access_token}",
            "Content-Type": "application/json",
        },
    )
    try:
        data = await response.json(content_type=None)
    except ValueError:
        data = {}
    finally:
        response.release()
    return response.status, data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class RoomState:
    encrypted: bool
    #: Each member's membership (join, invite, leave, ban, knock).
    memberships: dict[str, str]
    #: For each member, (the sender of their membership event, the event it replaced):
    #: a leave sent by the member that replaced an invitation turned it down.
    history: dict[str, tuple[str, str | None]]


class DirectRooms:
    """The bot's direct rooms with members (see the module's documentation)."""

    def __init__(self, client: AsyncClient, ctx: ServiceContext, *, encrypt: bool = True) -> None:
        self.client = client
        self.ctx = ctx
        self.encrypt = encrypt
        #: (room, member) -> see :attr:`RoomState.history`.
        self._history: dict[tuple[str, str], tuple[str, str | None]] = {}

    async def room_for(self, member: str) -> str:
        """The member's direct room, ready for a message: reused, invited again if they
        left it, or created. Raises :class:`InviteBlocked` or :class:`DeliveryFailure`."""
        room_id = await delivery.direct_room(self.ctx, member)
        if room_id is not None:
            try:
                membership = await self.membership(room_id, member)
            except RoomLost as lost:
                log.warning(
                    "Direct room %s of %s is lost (%s): making another", room_id, member, lost
                )
                await delivery.forget_direct_room(self.ctx, member, room_id)
                return await self._create(member)
            if membership in ("join", "invite"):
                return room_id
            if membership == "leave" and not await self._turned_down(room_id, member):
                # They left it: invite them back (they read the message as an invitee).
                await self._invite(room_id, member)
                await self.load(room_id, force=True)
                return room_id
            # They turned down its invitation, or were banned: this room is done with.
            await delivery.forget_direct_room(self.ctx, member, room_id)
            raise DeliveryFailure(
                f"{member} declined the direct room {room_id} (membership {membership})",
                permanent=True,
            )
        return await self._create(member)

    async def check_exists(self, member: str) -> None:
        """Refuse a member whose account does not exist (their homeserver says so), before
        a room is made for them: an invitation to a missing local user succeeds. Their
        server being down is a failure to retry."""
        status, data = await raw_request(self.client, "GET", ["profile", member])
        if status == 200 or status == 403:  # 403: profiles are private there; try anyway
            return
        response = ErrorResponse(
            data.get("error", f"HTTP {status}"), data.get("errcode"), data.get("retry_after_ms")
        )
        found = failure(response, f"look up {member}")
        # Synapse 1.163 answers a missing local user with 404 M_UNKNOWN "No row found".
        if status == 404:
            found.permanent = True
        raise found

    async def _turned_down(self, room_id: str, member: str) -> bool:
        """Whether the member's leaving was their refusal of the bot's invitation."""
        sender, replaced = self._history.get((room_id, member), ("", None))
        if sender != member or replaced is None:
            return False
        status, event = await raw_request(self.client, "GET", ["rooms", room_id, "event", replaced])
        return status == 200 and event.get("content", {}).get("membership") == "invite"

    async def _create(self, member: str) -> str:
        await self.check_exists(member)
        # Created without the invitation, which follows: a refused invitation must not
        # leave behind a room the bot cannot name (createRoom fails after making it).
        created = await self.client.room_create(
            is_direct=True,
            preset=RoomPreset.private_chat,
            initial_state=(
                [{"type": "m.room.encryption", "state_key": "", "content": MEGOLM}]
                if self.encrypt
                else []
            ),
        )
        if not isinstance(created, RoomCreateResponse):
            raise failure(created, "create a direct room")
        room_id = created.room_id
        try:
            await self._invite(room_id, member)
        except DeliveryFailure:
            try:
                await self.client.room_leave(room_id)
                await self.client.room_forget(room_id)
            except Exception as error:  # the refusal is what matters to the caller
                log.warning("Could not leave the unused room %s: %r", room_id, error)
            raise
        await delivery.record_direct_room(self.ctx, member, room_id)
        await self.add_to_account_data(member, room_id)
        await self.load(room_id, force=True)
        log.info("Created direct room %s for %s", room_id, member)
        return room_id

    async def _invite(self, room_id: str, member: str) -> None:
        # Through the state API, the one way to put is_direct into the invitation.
        status, data = await raw_request(
            self.client,
            "PUT",
            ["rooms", room_id, "state", "m.room.member", member],
            {"membership": "invite", "is_direct": True},
        )
        if status != 200:
            response = ErrorResponse(
                data.get("error", f"HTTP {status}"), data.get("errcode"), data.get("retry_after_ms")
            )
            raise failure(response, f"invite {member}")

    async def add_to_account_data(self, member: str, room_id: str) -> None:
        """Put the room first in the member's list of the bot's ``m.direct``."""
        path = ["user", self.client.user_id, "account_data", "m.direct"]
        status, current = await raw_request(self.client, "GET", path)
        direct = current if status == 200 else {}
        rooms = [r for r in direct.get(member, []) if isinstance(r, str) and r != room_id]
        direct[member] = [room_id, *rooms]
        status, data = await raw_request(self.client, "PUT", path, direct)
        if status != 200:
            log.warning("Could not record %s in m.direct: %s %s", room_id, status, data)

    async def state(self, room_id: str) -> RoomState:
        response = await self.client.room_get_state(room_id)
        if not isinstance(response, RoomGetStateResponse):
            raise failure(response, f"read the state of {room_id}")
        encrypted = False
        memberships: dict[str, str] = {}
        history: dict[str, tuple[str, str | None]] = {}
        for event in response.events:
            kind = event.get("type")
            if kind == "m.room.encryption":
                encrypted = True
            elif kind == "m.room.member":
                user = event.get("state_key", "")
                memberships[user] = event.get("content", {}).get("membership", "")
                # Synapse gives no prev_content here, only the ID of the replaced event.
                replaced = event.get("unsigned", {}).get("replaces_state")
                history[user] = (event.get("sender", ""), replaced)
        return RoomState(encrypted, memberships, history)

    async def load(self, room_id: str, *, force: bool = False) -> RoomState | None:
        """Make nio know the room, its encryption and its joined and invited members
        (whose devices it then queries), so their devices get the room key."""
        if not force and room_id in self.client.rooms:
            return None
        state = await self.state(room_id)
        room = self.client.rooms.get(room_id)
        if room is None:
            room = MatrixRoom(room_id, self.client.user_id, encrypted=state.encrypted)
            self.client.rooms[room_id] = room
        if state.encrypted:
            room.encrypted = True
            self.client.encrypted_rooms.add(room_id)
        for user, membership in state.memberships.items():
            if membership in ("join", "invite"):
                known = room.users.get(user)
                if known is None or known.invited != (membership == "invite"):
                    room.remove_member(user)
                    room.add_member(user, None, None, invited=membership == "invite")
            elif user in room.users:
                room.remove_member(user)
        for user, entry in state.history.items():
            self._history[(room_id, user)] = entry
        room.members_synced = True
        if state.encrypted and self.client.olm is not None:
            self.client.olm.update_tracked_users(room)
            if self.client.should_query_keys:
                await self.client.keys_query()
        return state

    async def membership(self, room_id: str, member: str) -> str:
        """The member's membership of the room, asked of the homeserver (they may have
        left since nio last looked); nio's view of the room is brought in step."""
        status, data = await raw_request(
            self.client, "GET", ["rooms", room_id, "state", "m.room.member", member]
        )
        if status == 403:  # the bot itself is no longer in the room
            raise RoomLost(f"the bot cannot read {room_id}: {data.get('errcode')}")
        if status not in (200, 404):
            response = ErrorResponse(
                data.get("error", f"HTTP {status}"), data.get("errcode"), data.get("retry_after_ms")
            )
            raise failure(response, f"read {member}'s membership of {room_id}")
        current = str(data.get("membership", "leave")) if status == 200 else "leave"
        room = self.client.rooms.get(room_id)
        known = room.users.get(member) if room is not None else None
        if (
            current in ("join", "invite")
            and known is not None
            and known.invited == (current == "invite")
        ):
            return current
        state = await self.load(room_id, force=True)
        assert state is not None
        return state.memberships.get(member, "leave")

    async def on_dm_invite(self, room_id: str, inviter: str) -> bool:
        """A member invited the bot to a direct room: join it, and make it their direct
        room if they have none that works (their waiting messages then go out). True if
        it became their direct room."""
        joined = await self.client.join(room_id)
        if not isinstance(joined, JoinResponse):
            log.warning("Could not join %s, opened by %s: %s", room_id, inviter, joined)
            return False
        current = await delivery.direct_room(self.ctx, inviter)
        if current is not None and current != room_id:
            try:
                if await self.membership(current, inviter) in ("join", "invite"):
                    return False
            except (DeliveryFailure, RoomLost):
                pass  # the old room cannot even be read: the new one replaces it
        state = await self.load(room_id, force=True)
        assert state is not None
        if not state.encrypted:
            status, _ = await raw_request(
                self.client, "PUT", ["rooms", room_id, "state", "m.room.encryption", ""], MEGOLM
            )
            if status != 200:
                log.warning(
                    "%s's room %s is not encrypted and I may not encrypt it", inviter, room_id
                )
                return False
            await self.load(room_id, force=True)
        released = await delivery.record_direct_room(self.ctx, inviter, room_id)
        await self.add_to_account_data(inviter, room_id)
        log.info("%s opened direct room %s (%s messages waiting)", inviter, room_id, released)
        return True
