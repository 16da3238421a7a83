"""The record of consensus is append-only and hash-chained."""

import pytest
from sqlalchemy import select, update
from sqlalchemy import text as sql_text

from harmony_matrix.services import consensus, debate, roll_call
from harmony_matrix.storage.models import AuditEvent, ConsensusRecord, OutboxMessage

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


async def _rows(ctx) -> list[ConsensusRecord]:
    async with ctx.transaction() as session:
        return list(await session.scalars(select(ConsensusRecord).order_by(ConsensusRecord.id)))


async def _sql(ctx, statement: str, **params) -> None:
    async with ctx.transaction() as session:
        await session.execute(sql_text(statement), params)


async def test_the_head_anchors_the_end_of_the_chain(demo):
    """Removing the last entry, or every entry, leaves a chain that checks out by itself:
    the head hash published with each new entry, or the count, shows what is missing."""
    for text_ in ("First", "Second", "Third"):
        await _decide(demo, text_)
    rows = await _rows(demo)
    check = await consensus.check_chain(demo)
    assert (check.count, check.head, check.intact) == (3, rows[-1].hash, True)
    published = check.head
    assert (await consensus.check_chain(demo, expect_head=published)).expected_head_at == 3
    assert (await consensus.check_chain(demo, expect_head=rows[0].hash)).expected_head_at == 1

    await _sql(demo, "DELETE FROM consensus_records WHERE id = :id", id=rows[-1].id)
    assert (await consensus.check_chain(demo)).intact  # the chain alone cannot tell
    truncated = await consensus.check_chain(demo, expect_head=published)
    assert not truncated.intact and truncated.count == 2
    assert "is not in the record" in truncated.problem.render("en")
    by_count = await consensus.check_chain(demo, expect_count=3)
    assert not by_count.intact and "were removed" in by_count.problem.render("en")

    await _sql(demo, "DELETE FROM consensus_records")
    emptied = await consensus.check_chain(demo, expect_head=published)
    assert (emptied.count, emptied.head, emptied.intact) == (0, consensus.GENESIS, False)


async def test_renumbering_is_detected(demo):
    for text_ in ("First", "Second"):
        await _decide(demo, text_)
    await _sql(demo, "UPDATE consensus_records SET id = id + 10")
    check = await consensus.check_chain(demo)
    assert not check.intact and check.broken == 11
    assert "does not match its hash" in check.problem.render("en")


async def test_renumbering_only_the_last_entry_is_detected(demo):
    for text_ in ("First", "Second"):
        await _decide(demo, text_)
    await _sql(demo, "UPDATE consensus_records SET id = 7 WHERE id = 2")
    assert (await consensus.check_chain(demo)).broken == 7


async def test_a_row_edited_by_hand_is_a_broken_entry_not_a_crash(demo):
    await _decide(demo, "First")
    await _decide(demo, "Second")
    await _sql(demo, "UPDATE consensus_records SET method = 'nope' WHERE id = 2")
    check = await consensus.check_chain(demo)
    assert check.broken == 2 and "unknown method “nope”" in check.problem.render("en")
    entries = await consensus.list_consensus(demo)  # the listing still shows it
    assert [entry.method for entry in entries][1] == "nope"


async def test_a_date_that_is_not_one_is_a_broken_entry(demo):
    if demo.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's timestamp column cannot hold text")
    await _decide(demo, "First")
    await _sql(demo, "UPDATE consensus_records SET recorded_at = 'yesterday-ish'")
    check = await consensus.check_chain(demo)
    assert check.broken == 1 and "“yesterday-ish”" in check.problem.render("en")
    assert (await consensus.list_consensus(demo))[0].recorded_at is None


async def test_entries_hashed_before_version_2_stay_verifiable(demo):
    """Entries written before the hash covered the number verify as version 1, but only
    at the start of the chain: a version-1 entry after a version-2 one is broken."""
    for text_ in ("First", "Second", "Third"):
        await _decide(demo, text_)
    rows = await _rows(demo)
    previous = consensus.GENESIS
    for row in rows[:2]:  # rewrite the first two as an older Harmony wrote them
        old = consensus.entry_hash(
            version=1,
            number=row.id,
            previous_hash=previous,
            meeting_id=row.meeting_id,
            question=row.question,
            outcome=row.outcome,
            method=row.method.value,
            assemblies=row.assemblies,
            recorded_at=row.recorded_at,
            recorded_by=row.recorded_by_id,
        )
        await _sql(demo, "UPDATE consensus_records SET hash = :h WHERE id = :id", h=old, id=row.id)
        await _sql(
            demo,
            "UPDATE consensus_records SET previous_hash = :h WHERE id = :id",
            h=old,
            id=row.id + 1,
        )
        previous = old
    third = rows[2]
    fields = dict(
        number=third.id,
        previous_hash=previous,
        meeting_id=third.meeting_id,
        question=third.question,
        outcome=third.outcome,
        method=third.method.value,
        assemblies=third.assemblies,
        recorded_at=third.recorded_at,
        recorded_by=third.recorded_by_id,
    )
    await _sql(
        demo,
        "UPDATE consensus_records SET hash = :h WHERE id = :id",
        h=consensus.entry_hash(**fields),
        id=third.id,
    )
    assert (await consensus.check_chain(demo)).intact
    # Renumbering a version-2 entry is caught; an entry downgraded to version 1 after a
    # version-2 one is refused.
    await _decide(demo, "Fourth")
    fourth = (await _rows(demo))[-1]
    downgraded = consensus.entry_hash(
        **{
            **fields,
            "version": 1,
            "number": fourth.id,
            "previous_hash": fourth.previous_hash,
            "meeting_id": fourth.meeting_id,
            "question": fourth.question,
            "outcome": fourth.outcome,
            "recorded_at": fourth.recorded_at,
            "recorded_by": fourth.recorded_by_id,
        }
    )
    await _sql(
        demo, "UPDATE consensus_records SET hash = :h WHERE id = :id", h=downgraded, id=fourth.id
    )
    assert (await consensus.check_chain(demo)).broken == fourth.id


async def test_each_new_entry_announces_the_head_in_the_rooms(demo):
    await _sql(
        demo,
        "UPDATE assemblies SET matrix_room_id = '!media:harmony.uk' WHERE slug = :slug",
        slug="media-working-group",
    )
    await _decide(demo, "Announced")
    row = (await _rows(demo))[-1]
    async with demo.transaction() as session:
        messages = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedupe_key.startswith("consensus:"))
            )
        )
    # In the meeting's room, which for a Moot is its assembly's room: once, not twice.
    assert [m.destination for m in messages] == [f"meeting:{row.meeting_id}"]
    announced = messages
    assert f"entry {row.id} in the record" in announced[0].body and row.hash in announced[0].body
    assert "--expect-head" in announced[0].body
