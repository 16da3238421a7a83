"""Is the database there, and at the schema this code expects? For /readyz and start-up."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from harmony_matrix.errors import HarmonyError
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage import migrations


async def require_ready(ctx: ServiceContext) -> None:
    """Raise (a HarmonyError saying what to do) unless the database is migrated."""
    await migrations.require_current_schema(ctx.engine)


async def is_ready(ctx: ServiceContext) -> bool:
    """False while the database is away, empty or at another schema."""
    try:
        await require_ready(ctx)
    except (HarmonyError, SQLAlchemyError, OSError):
        return False
    return True
