"""Messages to the room where a meeting is held.

A Moot is held in its assembly's room; a Thing in a room of its own, which the bot
creates once the Thing is called (bot/rooms.py), so it may not exist yet when the first
announcement is queued. Announcements are therefore addressed to the meeting
(``meeting:12``), and the sender finds the room when it sends (services/delivery.py:
``room_of_meeting``), waiting for a Thing's room to exist.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.i18n import Message
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.records import enqueue
from harmony_matrix.storage.models import Meeting

MEETING_DESTINATION = "meeting:"


def meeting_destination(meeting_id: int) -> str:
    """The outbox destination of a meeting's announcements."""
    return f"{MEETING_DESTINATION}{meeting_id}"


def meeting_of_destination(destination: str) -> int | None:
    """The meeting an outbox destination addresses, or None for a room or a person."""
    if not destination.startswith(MEETING_DESTINATION):
        return None
    number = destination.removeprefix(MEETING_DESTINATION)
    return int(number) if number.isdigit() else None


async def announce(
    session: AsyncSession,
    ctx: ServiceContext,
    meeting: Meeting,
    message: Message,
    dedupe_key: str,
    *,
    pin_key: str | None = None,
    attachment: bytes | None = None,
    attachment_type: str | None = None,
) -> bool:
    """Queue an announcement in the meeting's room, in the party's language (a room is
    read by many); False if it was queued before. ``pin_key``: the message is the latest
    version of one kept pinned (the meeting's state). ``attachment``: a file (the
    meeting's .ics), ``message`` being its file name."""
    return await enqueue(
        session,
        ctx.now(),
        destination=meeting_destination(meeting.id),
        is_direct=False,
        language=ctx.party.default_language,
        message=message,
        dedupe_key=dedupe_key,
        pin_key=pin_key,
        attachment=attachment,
        attachment_type=attachment_type,
    )
