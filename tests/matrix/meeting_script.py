"""A meeting run in the chat, as people do it: commands typed in Element by a secretary
and members, answered by the real bot on a real homeserver. Shared by the whole-meeting
tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from nio import (
    EncryptionError,
    Event,
    MegolmEvent,
    MessageDirection,
    RoomMessagesResponse,
    RoomMessageText,
)
from sqlalchemy import select

from harmony_matrix.services import delivery
from harmony_matrix.storage.models import Meeting, OutboxMessage
from tests.matrix.bot_runner import reply_to
from tests.matrix.member import Member


async def say(member: Member, room_id: str, text: str, within: float = 30.0) -> str:
    """Send a command and return the bot's reply to it (every command gets one)."""
    event_id = await member.send_text(room_id, text)
    reply = await reply_to(member, room_id, event_id, within=within)
    return reply.body


async def all_say(members: Iterable[Member], room_id: str, text: str) -> list[str]:
    return [await say(member, room_id, text) for member in members]


def local_time(moment: datetime, timezone: str = "Europe/London") -> tuple[str, str]:
    """The date and time as ``!schedule`` takes them, in the party's timezone."""
    local = moment.astimezone(ZoneInfo(timezone))
    return local.strftime("%Y-%m-%d"), local.strftime("%H:%M")


async def latest_meeting(ctx) -> Meeting:
    async with ctx.transaction() as session:
        meeting = await session.scalar(select(Meeting).order_by(Meeting.id.desc()).limit(1))
        assert meeting is not None
        session.expunge(meeting)
        return meeting


async def direct_room(ctx, matrix_id: str, within: float = 60.0) -> str:
    deadline = asyncio.get_running_loop().time() + within
    while (room_id := await delivery.direct_room(ctx, matrix_id)) is None:
        assert asyncio.get_running_loop().time() < deadline, f"no direct room for {matrix_id}"
        await asyncio.sleep(0.2)
    return room_id


async def join_direct_room(ctx, member: Member) -> str:
    room_id = await direct_room(ctx, member.user_id)
    if room_id not in member.client.rooms:
        await member.wait_for_invite(room_id, within=60)
        await member.join(room_id)
    return room_id


async def ballot_link(ctx, member: Member, seen: set[str], within: float = 60.0) -> str:
    """The signed link in the member's latest ballot message, read as the member reads it
    (decrypted, in their direct room), once the bot has recorded its delivery; ``seen``
    holds the ballot messages of earlier rounds.

    The latest, not the first: a delivery the homeserver accepted but the bot did not
    hear back about (a timeout under load) is sent again with a new link, and only the
    latest link works."""
    room_id = await join_direct_room(ctx, member)
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with ctx.transaction() as session:
            waiting = await session.scalar(
                select(OutboxMessage.id).where(
                    OutboxMessage.voting_right_id.is_not(None),
                    OutboxMessage.destination == member.user_id,
                    OutboxMessage.sent_at.is_(None),
                )
            )
        if waiting is None:
            break
        assert asyncio.get_running_loop().time() < deadline, "the ballot message was not sent"
        await asyncio.sleep(0.2)
    await member.wait_for(
        lambda e: isinstance(e, RoomMessageText) and "/vote/" in e.body and e.event_id not in seen,
        room_id=room_id,
        within=within,
    )
    await member.sync()
    member.decrypt_what_can_be()
    new = [
        event
        for event_room, event in member.events
        if event_room == room_id
        and isinstance(event, RoomMessageText)
        and "/vote/" in event.body
        and event.event_id not in seen
    ]
    seen.update(event.event_id for event in new)
    word = next(w for w in new[-1].body.split() if "/vote/" in w)
    return word.rsplit("/vote/", 1)[1]


async def in_history(
    member: Member, room_id: str, predicate: Callable[[Event], bool], within: float = 60.0
) -> Event:
    """The first event of the room's history that matches, decrypted, read with
    ``/messages`` as a client scrolling back does. A member who joined a room over
    federation after a message was sent sees it only this way (their homeserver
    backfills it); its room key may also arrive a moment later."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        await member.sync()
        response = await member.client.room_messages(
            room_id, direction=MessageDirection.back, limit=100
        )
        assert isinstance(response, RoomMessagesResponse), response
        for event in response.chunk:
            if isinstance(event, MegolmEvent):
                try:
                    event = member.client.decrypt_event(event)
                except EncryptionError:
                    continue
            if predicate(event):
                return event
        assert asyncio.get_running_loop().time() < deadline, f"nothing matching in {room_id}"
        await asyncio.sleep(0.5)


async def announcement(
    member: Member, room_id: str, contains: str, within: float = 30.0
) -> RoomMessageText:
    """An announcement in the room (an ``m.text`` message, where replies to commands are
    notices) containing ``contains``."""
    return await member.wait_for_text(room_id, contains, within=within)
