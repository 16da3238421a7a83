"""Nothing stored, logged or sent links a person to how they voted.

These tests look at the database itself (schema, every row, row order, PostgreSQL row
versions) and at every log record, not at the code.
"""

import logging

import pytest
from sqlalchemy import inspect, select, text

from harmony_matrix.services import ballots
from harmony_matrix.storage.models import Base, CountedBallot, OutboxMessage
from tests.conftest import POSTGRES_URL
from tests.services.helpers import ANA

from .helpers import links_by_person, meeting_at_vote, path_of, voters

SECRET_TABLES = ("voting_rights", "spent_tokens", "sealed_ballots", "counted_ballots")


def _distinct_ballots(count: int) -> list[dict[int, int]]:
    """Ballots that are all different, so each one identifies its caster in the test."""
    return [{1: n % 6, 2: (n // 6) % 6, 3: (n // 36) % 6} for n in range(count)]


async def _dump(ctx) -> dict[str, list[dict]]:
    async with ctx.engine.connect() as connection:
        dump = {}
        for table in Base.metadata.sorted_tables:
            rows = await connection.execute(select(table))
            dump[table.name] = [dict(row._mapping) for row in rows]
        return dump


async def _run_round(ctx, caplog, count: int = 12):
    present = await voters(ctx, count)
    ref = await meeting_at_vote(ctx, present)
    await ballots.open_ballot(ctx, ANA, ref)
    links = await links_by_person(ctx)
    cast_order = _distinct_ballots(count)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # SQL logging on
        receipts = [
            await ballots.cast_ballot(ctx, path_of(links[who]), scores)
            for who, scores in zip(present, cast_order, strict=True)
        ]
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    return ref, present, links, cast_order, receipts


async def test_the_schema_has_no_link_between_people_and_ballots(demo):
    async with demo.engine.connect() as connection:

        def describe(sync):
            inspector = inspect(sync)
            return {
                name: (
                    {c["name"]: str(c["type"]) for c in inspector.get_columns(name)},
                    [fk["referred_table"] for fk in inspector.get_foreign_keys(name)],
                )
                for name in inspector.get_table_names()
            }

        tables = await connection.run_sync(describe)
    sealed_columns, sealed_refs = tables["sealed_ballots"]
    assert set(sealed_columns) == {"id", "round_id", "sealed"}  # nothing in clear
    assert sealed_refs == ["ballot_rounds"]
    ballot_columns, ballot_refs = tables["counted_ballots"]
    assert set(ballot_columns) == {"id", "round_id", "receipt", "scores"}
    assert ballot_refs == ["ballot_rounds"]
    spent_columns, spent_refs = tables["spent_tokens"]
    assert set(spent_columns) == {"token_hash", "round_id"} and spent_refs == ["ballot_rounds"]
    right_columns, _refs = tables["voting_rights"]
    assert set(right_columns) == {"id", "round_id", "person_id", "token_hash"}
    for name in SECRET_TABLES:  # no time of casting anywhere
        assert not any("TIME" in kind.upper() for kind in tables[name][0].values()), name
    for name, (_columns, refs) in tables.items():  # nothing else points at a ballot
        assert not {"sealed_ballots", "counted_ballots", "spent_tokens"} & set(refs), name


async def test_no_row_links_a_person_to_a_ballot(demo, caplog):
    ref, _present, links, _cast_order, receipts = await _run_round(demo, caplog)
    dump_open = await _dump(demo)
    # While open: rights are untouched by voting; spent hashes cannot be matched to them.
    rights = dump_open["voting_rights"]
    assert {r["token_hash"] for r in rights}.isdisjoint(
        {s["token_hash"] for s in dump_open["spent_tokens"]}
    )
    await ballots.close_ballot(demo, ANA, ref)
    dump = await _dump(demo)
    text_of = {name: repr(rows) for name, rows in dump.items()}

    # No token of any link is stored anywhere, not even in the outbox.
    for url in links.values():
        token = path_of(url).split(".")[1]
        assert not any(token in blob for blob in text_of.values())
    # A receipt and a ballot's id appear in the ballots table and nowhere else.
    for ballot in dump["counted_ballots"]:
        for value in (ballot["receipt"], ballot["id"]):
            holders = [name for name, blob in text_of.items() if value in blob]
            assert holders == ["counted_ballots"], (value, holders)
    # Casting left no trace naming anyone: no audit event, and no spent hash after closing.
    actions = [event["action"] for event in dump["audit_events"]]
    assert "ballot.open" in actions and "ballot.close" in actions
    assert not [a for a in actions if "cast" in a]
    assert dump["spent_tokens"] == [] and dump["sealed_ballots"] == []
    assert sorted(b["receipt"] for b in dump["counted_ballots"]) == sorted(receipts)


async def test_the_order_of_rows_says_nothing_about_the_order_of_casting(demo, caplog):
    ref, _present, _links, cast_order, _receipts = await _run_round(demo, caplog, count=12)
    await ballots.close_ballot(demo, ANA, ref)
    expected = [[s[1], s[2], s[3]] for s in cast_order]
    async with demo.engine.connect() as connection:
        stored = [list(row.scores) for row in await connection.execute(select(CountedBallot))]
        by_id = [
            list(row.scores)
            for row in await connection.execute(select(CountedBallot).order_by(CountedBallot.id))
        ]
        by_receipt = [
            list(row.scores)
            for row in await connection.execute(
                select(CountedBallot).order_by(CountedBallot.receipt)
            )
        ]
    assert sorted(stored) == sorted(expected)
    # 12 distinct ballots: any of these equal to the casting order by chance is 1 in 12!.
    assert stored != expected and by_id != expected and by_receipt != expected


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL row versions (xmin)")
async def test_postgresql_row_versions_do_not_pair_rights_with_ballots(demo, caplog):
    ref, *_ = await _run_round(demo, caplog, count=8)

    async def xmins(table: str) -> list[int]:
        async with demo.engine.connect() as connection:
            rows = await connection.execute(text(f"SELECT xmin::text::bigint FROM {table}"))
            return [row[0] for row in rows]

    # Open: each ballot shares its transaction only with an anonymous spent hash.
    assert set(await xmins("sealed_ballots")).isdisjoint(await xmins("voting_rights"))
    await ballots.close_ballot(demo, ANA, ref)
    # Closed: all ballots were rewritten in one transaction, in random order.
    assert len(set(await xmins("counted_ballots"))) == 1
    assert set(await xmins("counted_ballots")).isdisjoint(await xmins("voting_rights"))


async def test_logs_and_messages_reveal_nothing(demo, caplog):
    _ref, present, links, _cast_order, receipts = await _run_round(demo, caplog)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "INSERT INTO sealed_ballots" in logged  # SQL logging really was on
    for url in links.values():
        assert path_of(url).split(".")[1] not in logged
    for receipt in receipts:
        assert receipt not in logged
    for who in present:
        assert who not in logged
    assert "[5, " not in logged and "[0, " not in logged  # no scores as parameters
    async with demo.transaction() as session:
        bodies = [m.body for m in await session.scalars(select(OutboxMessage))]
    for receipt in receipts:
        assert not any(receipt in body for body in bodies)
