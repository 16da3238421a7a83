"""The ledger of Matrix events the bot has acted on (see ``bot/handling.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.storage.models import HandledEvent


async def claim(
    session: AsyncSession, at: datetime, *, event_id: str, room_id: str, outcome: str
) -> bool:
    """Record that the event is being handled, in the caller's transaction; False if it
    was handled before (then the caller does nothing). One statement, and no unique-key
    error for the database server to log."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = await session.execute(
        insert(HandledEvent)
        .values(event_id=event_id, room_id=room_id, handled_at=at, outcome=outcome)
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
