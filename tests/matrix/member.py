"""A member's Matrix client for the tests: the demo's scripted member (matrix-nio with
end-to-end encryption, driven by hand so a test decides when it waits), logged in on the
device of its registration."""

from __future__ import annotations

from pathlib import Path

from nio import (
    MegolmEvent,
    MessageDirection,
    RoomCreateResponse,
    RoomMessagesResponse,
    RoomMessageText,
)

from harmony_matrix.demo.member import MatrixScriptError, ScriptedMember
from harmony_matrix.homeserver import RegisteredUser

ENCRYPTION = {"algorithm": "m.megolm.v1.aes-sha2"}

#: The homeserver refused a request, or an awaited event never came.
MatrixTestError = MatrixScriptError


class Member(ScriptedMember):
    """One registered user on one device (the device of their registration)."""

    user: RegisteredUser

    @classmethod
    async def login(cls, user: RegisteredUser, store_dir: Path) -> Member:
        member = await cls.restore(
            user.homeserver, user.user_id, user.device_id, user.access_token, store_dir
        )
        assert isinstance(member, Member)
        member.user = user
        return member

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
