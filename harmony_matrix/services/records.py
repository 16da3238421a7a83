"""Audit events and queued outgoing messages, written in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.i18n import Message
from harmony_matrix.storage.models import AuditEvent, OutboxMessage, Person


def audit(
    session: AsyncSession,
    at: datetime,
    actor: Person | None,
    action: str,
    subject: str = "",
    **details: Any,
) -> None:
    """Record who did what. Never pass anything that reveals how someone voted."""
    session.add(
        AuditEvent(
            at=at,
            actor_id=actor.id if actor else None,
            action=action,
            subject=subject,
            details=details,
        )
    )


async def enqueue(
    session: AsyncSession,
    at: datetime,
    *,
    destination: str,
    is_direct: bool,
    message: Message,
    language: str,
    dedupe_key: str,
    voting_right_id: int | None = None,
    mention: str | None = None,
    pin_key: str | None = None,
    attachment: bytes | None = None,
    attachment_type: str | None = None,
) -> bool:
    """Queue a message for the bot to send exactly once; False if it was queued before.

    The body is rendered now, in the recipient's language, so the sender never needs
    the rules or the catalogs, and what was sent is what was decided. ``mention``: the
    Matrix ID the message pings in a room (a direct message pings its recipient anyway).
    ``pin_key`` and ``attachment``: see :class:`OutboxMessage` (a file's message body is
    its file name).
    """
    exists = await session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)
    )
    if exists is not None:
        return False
    session.add(
        OutboxMessage(
            created_at=at,
            destination=destination,
            is_direct=is_direct,
            language=language,
            body=message.render(language),
            dedupe_key=dedupe_key,
            sent_at=None,
            voting_right_id=voting_right_id,
            mention=mention,
            pin_key=pin_key,
            attachment=attachment,
            attachment_type=attachment_type,
        )
    )
    return True


async def direct_message(
    session: AsyncSession,
    at: datetime,
    person: Person,
    *,
    message: Message,
    dedupe_key: str,
    voting_right_id: int | None = None,
    attachment: bytes | None = None,
    attachment_type: str | None = None,
) -> bool:
    """Queue a direct message to a person, in their own language (see :func:`enqueue`;
    with an ``attachment``, ``message`` is the file's name)."""
    return await enqueue(
        session,
        at,
        destination=person.matrix_id,
        is_direct=True,
        language=person.language,
        message=message,
        dedupe_key=dedupe_key,
        voting_right_id=voting_right_id,
        attachment=attachment,
        attachment_type=attachment_type,
    )
