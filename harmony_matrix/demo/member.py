"""A scripted person's Matrix client: matrix-nio with end-to-end encryption, driven by
hand (one sync at a time) so the script decides when it waits.

The demo's walkthrough plays its members with it, and the tests theirs: both need a
client that reads the bot's encrypted replies as Element would, without a sync loop of
its own racing the script's requests.
"""

from __future__ import annotations

import asyncio
import json
import re
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
    LoginResponse,
    MegolmEvent,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)
from nio.store import SqliteStore

from harmony_matrix.bot.session import write_private


class MatrixScriptError(Exception):
    """The homeserver refused a request, or an awaited event never came."""


class ScriptedMember:
    """One user on one device, whose olm keys are kept in ``store_dir``."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        #: Every timeline event seen so far, in order, as (room ID, event); megolm
        #: events are replaced by their decryption once their key has arrived.
        self.events: list[tuple[str, Event]] = []
        #: Invitations from these users are accepted at each sync, as a person accepts
        #: the bot's direct message in their client.
        self.accept_invites_from: set[str] = set()

    @classmethod
    async def restore(
        cls,
        homeserver: str,
        user_id: str,
        device_id: str,
        access_token: str,
        store_dir: Path,
        *,
        resume_sync: bool = True,
    ) -> ScriptedMember:
        """A device that already exists (its access token), its keys uploaded if new.

        With ``resume_sync``, syncing goes on from where this device's last sync
        stopped; without, the first sync is a full one, which tells the client every
        room it is in (nio keeps no list of rooms between runs) and a little history."""
        await asyncio.to_thread(store_dir.mkdir, parents=True, exist_ok=True)
        config = AsyncClientConfig(
            encryption_enabled=True, store=SqliteStore, store_sync_tokens=resume_sync
        )
        client = AsyncClient(
            homeserver, user_id, device_id=device_id, store_path=str(store_dir), config=config
        )
        client.restore_login(user_id, device_id, access_token)
        member = cls(client)
        try:
            await member.sync()  # uploads the device's keys
        except MatrixScriptError:
            await client.close()
            raise
        return member

    @classmethod
    async def log_in(
        cls, homeserver: str, user_id: str, password: str, store_dir: Path, device_name: str
    ) -> ScriptedMember:
        """The device of an earlier run (kept in ``store_dir``, so it can still read what
        was sent to it), or a new one made by a password login."""
        saved = store_dir / "credentials.json"
        if saved.exists():
            kept = json.loads(saved.read_text(encoding="utf-8"))
            try:
                return await cls.restore(
                    homeserver,
                    user_id,
                    kept["device_id"],
                    kept["access_token"],
                    store_dir,
                    resume_sync=False,
                )
            except MatrixScriptError:
                # The device was signed out (from Element, say): sign in anew.
                saved.unlink()
        client = AsyncClient(homeserver, user_id)
        try:
            response = await client.login(password, device_name=device_name)
        finally:
            await client.close()
        if not isinstance(response, LoginResponse):
            raise MatrixScriptError(f"{user_id}: login failed: {response}")
        await asyncio.to_thread(store_dir.mkdir, parents=True, exist_ok=True)
        kept = {"device_id": response.device_id, "access_token": response.access_token}
        write_private(saved, json.dumps(kept) + "\n")
        return await cls.restore(
            homeserver,
            user_id,
            response.device_id,
            response.access_token,
            store_dir,
            resume_sync=False,
        )

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    async def close(self) -> None:
        await self.client.close()

    async def sync(self, timeout_ms: int = 0) -> SyncResponse:
        """One sync, then the key traffic end-to-end encryption needs after it."""
        response = await self.client.sync(timeout=timeout_ms)
        if not isinstance(response, SyncResponse):
            raise MatrixScriptError(f"{self.user_id}: sync failed: {response}")
        for room_id, room in response.rooms.join.items():
            self.events.extend((room_id, event) for event in room.timeline.events)
        await self._exchange_keys()
        await self._accept_invites()
        return response

    async def _exchange_keys(self) -> None:
        client = self.client
        await client.send_to_device_messages()
        if client.should_upload_keys:
            check(await client.keys_upload(), "keys_upload")
        if client.should_query_keys:
            check(await client.keys_query(), "keys_query")
        if client.should_claim_keys:
            check(await client.keys_claim(client.get_users_for_key_claiming()), "keys_claim")

    async def _accept_invites(self) -> None:
        for room_id, room in list(self.client.invited_rooms.items()):
            if room.inviter in self.accept_invites_from:
                check(await self.client.join(room_id), f"join {room_id}")

    async def join(self, room_id: str, within: float = 10.0) -> None:
        """Join (after an invite, a room on this server, or one already joined), then sync
        until the room is known (a join over federation may reach the member's sync a
        moment later)."""
        check(await self.client.join(room_id), f"join {room_id}")
        deadline = time.monotonic() + within
        await self.sync()
        while room_id not in self.client.rooms:
            if time.monotonic() > deadline:
                raise MatrixScriptError(f"{self.user_id}: joined {room_id}, unseen in {within} s")
            await self.sync(timeout_ms=500)

    async def wait_for_invite(self, room_id: str, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while room_id not in self.client.invited_rooms:
            if time.monotonic() > deadline:
                raise MatrixScriptError(f"{self.user_id}: no invite to {room_id} in {within} s")
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
            raise MatrixScriptError(f"{self.user_id}: sending to {room_id} failed: {response}")
        return str(response.event_id)

    async def wait_for(
        self,
        predicate: Callable[[Event], bool],
        *,
        room_id: str | None = None,
        within: float = 10.0,
        since: int = 0,
    ) -> Event:
        """The first event seen (earlier or from now on) that matches, decrypted.

        Earlier events count too (from ``since``, an index into :attr:`events`): a reply
        may have come in with a sync made for another reason. Syncs until one matches
        or ``within`` seconds have passed."""
        deadline = time.monotonic() + within
        while True:
            self.decrypt_what_can_be()
            for event_room, event in self.events[since:]:
                if (room_id is None or event_room == room_id) and predicate(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [f"{r} {type(e).__name__} {_summary(e)}" for r, e in self.events[-10:]]
                raise MatrixScriptError(
                    f"{self.user_id}: no matching event in {within} s; last seen:\n"
                    + "\n".join(seen)
                )
            await self.sync(timeout_ms=int(min(remaining, 1.0) * 1000))

    async def wait_for_text(
        self, room_id: str, contains: str, *, within: float = 10.0
    ) -> RoomMessageText:
        """The first ``m.text`` message (not a notice) in the room whose body contains
        ``contains``."""
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


def replied_to(event: Event) -> str | None:
    """The event ID a message replies to, if it is a reply."""
    relates = event.source.get("content", {}).get("m.relates_to", {})
    found = relates.get("m.in_reply_to", {}).get("event_id")
    return str(found) if found else None


def check(response: Any, what: str) -> None:
    if isinstance(response, ErrorResponse):
        raise MatrixScriptError(f"{what} failed: {response}")


def _summary(event: Event) -> str:
    """An event in a few words for an error message; a ballot link's secret part is
    left out (a member's direct messages hold their links)."""
    text = str(getattr(event, "body", "") or event.source.get("type", ""))
    return re.sub(r"/vote/\S+", "/vote/…", text)[:200]
