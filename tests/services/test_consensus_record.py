"""The record of consensus is append-only and hash-chained."""

import pytest
from sqlalchemy import select, update

from harmony_matrix.services import consensus, debate, roll_call
from harmony_matrix.storage.models import AuditEvent, ConsensusRecord

from .helpers import ANA, CHLOE, ELIF, GWEN, prepared_moot


async def _decide(ctx, text: str) -> None:
    ref = await prepared_moot(ctx)
    await roll_call.open_meeting(ctx, ANA, ref)
    for who in (ANA, CHLOE, GWEN, ELIF):
        await roll_call.record_attendance(ctx, who, ref)
    await debate.start_debate(ctx, ANA, ref)
    await debate.add_option(ctx, ANA, ref, text)
    await debate.end_debate(ctx, ANA, ref)


async def test_entries_chain_and_tampering_is_detected(demo):
    for text in ("First", "Second", "Third"):
        await _decide(demo, text)
    async with demo.transaction() as session:
        rows = list(await session.scalars(select(ConsensusRecord).order_by(ConsensusRecord.id)))
    assert rows[0].previous_hash == consensus.GENESIS
    assert [r.previous_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    assert await consensus.verify_chain(demo) is None
    # Someone edits the database behind the application's back.
    async with demo.transaction() as session:
        await session.execute(
            update(ConsensusRecord).where(ConsensusRecord.id == rows[1].id).values(outcome="Forged")
        )
    assert await consensus.verify_chain(demo) == rows[1].id


async def test_the_application_refuses_to_change_history(demo):
    await _decide(demo, "Kept")

    async def change() -> None:
        async with demo.transaction() as session:
            record = await session.scalar(select(ConsensusRecord))
            record.outcome = "Changed"

    async def delete() -> None:
        async with demo.transaction() as session:
            await session.delete(await session.scalar(select(AuditEvent)))

    with pytest.raises(PermissionError, match="append-only"):
        await change()
    with pytest.raises(PermissionError, match="append-only"):
        await delete()
    assert (await consensus.list_consensus(demo))[0].outcome == "Kept"
