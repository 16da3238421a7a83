"""The outbox as the crash tests watch it from the database."""

from __future__ import annotations

import asyncio
import subprocess
import time

from sqlalchemy import func, select

from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import OutboxMessage


async def sent_count(ctx: ServiceContext) -> int:
    async with ctx.transaction() as session:
        return (
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.sent_at.is_not(None))
            )
            or 0
        )


async def wait_until_sent(
    ctx: ServiceContext,
    at_least: int,
    process: subprocess.Popen[bytes],
    within: float = 120.0,
) -> None:
    deadline = time.monotonic() + within
    while await sent_count(ctx) < at_least:
        assert process.poll() is None, "the sender exited early"
        assert time.monotonic() < deadline, f"fewer than {at_least} sent in {within} s"
        await asyncio.sleep(0.02)
