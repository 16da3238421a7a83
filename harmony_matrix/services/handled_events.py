"""The ledger of Matrix events the bot has acted on (see ``bot/handling.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import HandledEvent


async def was_handled(session: AsyncSession, event_id: str) -> bool:
    return await session.get(HandledEvent, event_id) is not None


def record_handled(
    session: AsyncSession, at: datetime, *, event_id: str, room_id: str, outcome: str
) -> None:
    session.add(HandledEvent(event_id=event_id, room_id=room_id, handled_at=at, outcome=outcome))


async def handled_among(ctx: ServiceContext, event_ids: list[str]) -> set[str]:
    """Which of these events were handled already."""
    if not event_ids:
        return set()
    async with ctx.transaction() as session:
        rows = await session.scalars(
            select(HandledEvent.event_id).where(HandledEvent.event_id.in_(event_ids))
        )
        return set(rows)
