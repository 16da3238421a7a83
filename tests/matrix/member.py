"""A member's Matrix client for the tests: matrix-nio with end-to-end encryption, driven
by hand (one sync at a time) so a test decides when it waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    EncryptionError,
    ErrorResponse,
    Event,
    MegolmEvent,
    MessageDirection,
    RoomCreateResponse,
    RoomMessagesResponse,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)
from nio.store import SqliteStore

from harmony_matrix.homeserver import RegisteredUser

ENCRYPTION = {"algorithm": "m.megolm.v1.aes-sha2"}


class MatrixTestError(AssertionError):
    """The homeserver refused a request, or an awaited event never came."""


class Member:
    """One registered user on one device (the device of their registration)."""

    def __init__(self, client: AsyncClient, user: RegisteredUser) -> None:
        self.client = client
        self.user = user
        #: Every timeline event seen so far, in order, as (room ID, event); megolm
        #: events are replaced by their decryption once their key has arrived.
        self.events: list[tuple[str, Event]] = []

    @classmethod
    async def login(cls, user: RegisteredUser, store_dir: Path) -> Member:
        await asyncio.to_thread(store_dir.mkdir, parents=True, exist_ok=True)
        config = AsyncClientConfig(
            encryption_enabled=True, store=SqliteStore, store_sync_tokens=True
        )
        client = AsyncClient(
            user.homeserver,
            user.user_id,
            device_id=user.device_id,
            store_path=str(store_dir),
            config=config,
        )
        client.restore_login(user.user_id, user.device_id, user.access_token)
        member = cls(client, user)
        await member.sync()  # uploads the device's keys
        return member

    @property
    def user_id(self) -> str:
        return self.user.user_id

    async def close(self) -> None:
        await self.client.close()

    async def sync(self, timeout_ms: int = 0) -> SyncResponse:
        """One sync, then the key traffic end-to-end encryption needs after it."""
        response = await self.client.sync(timeout=timeout_ms)
        if not isinstance(response, SyncResponse):
            raise MatrixTestError(f"{self.user_id}: sync failed: {response}")
        for room_id, room in response.rooms.join.items():
            self.events.extend((room_id, event) for event in room.timeline.events)
        await self._exchange_keys()
        return response

    async def _exchange_keys(self) -> None:
        client = self.client
        await client.send_to_device_messages()
        if client.should_upload_keys:
            _check(await client.keys_upload(), "keys_upload")
        if client.should_query_keys:
            _check(await client.keys_query(), "keys_query")
        if client.should_claim_keys:
            _check(await client.keys_claim(client.get_users_for_key_claiming()), "keys_claim")

    async def create_room(
        self, *, invite: tuple[str, ...] = (), encrypted: bool = True, name: str | None = None
    ) -> str:
        initial_state = [{"type": "m.room.encryption", "state_key": "", "content": ENCRYPTION}]
        response = await self.client.room_create(
            name=name, invite=list(invite), initial_state=initial_state if encrypted else []
        )
        if not isinstance(response, RoomCreateResponse):
            raise MatrixTestError(f"{self.user_id}: room_create failed: {response}")
        await self.sync()
        return str(response.room_id)

    async def join(self, room_id: str, within: float = 10.0) -> None:
        """Join (after an invite, or a room on this server), then sync until the room is
        known (a join over federation may reach the member's sync a moment later)."""
        _check(await self.client.join(room_id), f"join {room_id}")
        deadline = time.monotonic() + within
        await self.sync()
        while room_id not in self.client.rooms:
            if time.monotonic() > deadline:
                raise MatrixTestError(f"{self.user_id}: joined {room_id}, unseen in {within} s")
            await self.sync(timeout_ms=500)

    async def wait_for_invite(self, room_id: str, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while room_id not in self.client.invited_rooms:
            if time.monotonic() > deadline:
                raise MatrixTestError(f"{self.user_id}: no invite to {room_id} in {within} s")
            await self.sync(timeout_ms=500)

    async def send_text(self, room_id: str, body: str) -> str:
        """Send an m.text message (encrypted in an encrypted room); return its event ID.

        Syncs first, so that members who joined since are given the room key."""
        await self.sync()
        response = await self.client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": body},
            ignore_unverified_devices=True,
        )
        if not isinstance(response, RoomSendResponse):
            raise MatrixTestError(f"{self.user_id}: sending to {room_id} failed: {response}")
        return str(response.event_id)

    async def wait_for(
        self,
        predicate: Callable[[Event], bool],
        *,
        room_id: str | None = None,
        within: float = 10.0,
    ) -> Event:
        """The first event seen (earlier or from now on) that matches, decrypted.

        Earlier events count too: a reply may have come in with a sync made for another
        reason. Syncs until one matches or ``within`` seconds have passed."""
        deadline = time.monotonic() + within
        while True:
            self.decrypt_what_can_be()
            for event_room, event in self.events:
                if (room_id is None or event_room == room_id) and predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [f"{r} {type(e).__name__} {_summary(e)}" for r, e in self.events[-10:]]
                raise MatrixTestError(
                    f"{self.user_id}: no matching event in {within} s; last seen:\n"
                    + "\n".join(seen)
                )
            await self.sync(timeout_ms=int(min(remaining, 1.0) * 1000))

    async def wait_for_text(
        self, room_id: str, contains: str, *, within: float = 10.0
    ) -> RoomMessageText:
        """The first text or notice in the room whose body contains ``contains``."""
        event = await self.wait_for(
            lambda e: isinstance(e, RoomMessageText) and contains in e.body,
            room_id=room_id,
            within=within,
        )
        assert isinstance(event, RoomMessageText)
        return event

    def decrypt_what_can_be(self) -> None:
        for index, (room_id, event) in enumerate(self.events):
            if isinstance(event, MegolmEvent):
                try:
                    decrypted = self.client.decrypt_event(event)
                except EncryptionError:
                    continue  # its key has not arrived yet
                self.events[index] = (room_id, decrypted)


async def bodies_in(member: Member, room_id: str) -> list[str]:
    """Every message in the room as the member reads it (decrypted), oldest first;
    a message the member cannot decrypt fails the test."""
    await member.sync()
    bodies: list[str] = []
    start = None
    while True:
        response = await member.client.room_messages(
            room_id, start=start, direction=MessageDirection.back, limit=100
        )
        assert isinstance(response, RoomMessagesResponse), response
        for event in response.chunk:
            assert not isinstance(event, MegolmEvent), f"undecryptable: {event.event_id}"
            if isinstance(event, RoomMessageText):
                bodies.append(event.body)
        if not response.chunk or not response.end or response.end == start:
            break
        start = response.end
    return list(reversed(bodies))


def _check(response: Any, what: str) -> None:
    if isinstance(response, ErrorResponse):
        raise MatrixTestError(f"{what} failed: {response}")


def _summary(event: Event) -> str:
    return str(getattr(event, "body", "") or event.source.get("type", ""))
