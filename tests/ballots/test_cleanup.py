"""After the close: the round's key is gone, and the old storage is rewritten even when
a reader or a long transaction holds it up (retried, reported, never silently skipped).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import asyncpg
import pytest
from sqlalchemy import select

from harmony_matrix.errors import NotAllowed, RuleViolation
from harmony_matrix.services import ballot_cleanup, ballots
from harmony_matrix.storage.key_store import KeyFileMissing
from harmony_matrix.storage.models import BallotRound, SealedBallot
from harmony_matrix.voting.sealing import RoundKeys, SealBroken, unseal
from tests.services.helpers import ANA

from . import raw
from .helpers import deliver_links, meeting_at_vote, path_of, voters


async def _cast_all(ctx, count: int = 6) -> tuple[str, list[bytes], bytes]:
    """A round where everyone voted; returns its ref, its sealed ballots and its key."""
    present = await voters(ctx, count)
    ref = await meeting_at_vote(ctx, present)
    await ballots.open_ballot(ctx, ANA, ref)
    links = await deliver_links(ctx)
    for n, who in enumerate(present):
        await ballots.cast_ballot(ctx, path_of(links[who]), {1: n % 6, 2: 5, 3: 0})
    async with ctx.transaction() as session:
        sealed = [b.sealed for b in await session.scalars(select(SealedBallot))]
        public = await session.scalar(select(BallotRound.seal_key))
    return ref, sealed, public


async def test_after_the_close_not_even_the_secret_key_opens_a_sealed_ballot(demo):
    ref, sealed, public = await _cast_all(demo)
    # While open, the key store and the secret key open them (this is how it counts).
    keys = demo.round_keys.load(public)
    assert unseal(keys, demo.secret_key, 1, sealed[0], 3)[1][1:] == [5, 0]
    with pytest.raises(SealBroken):  # the secret key alone opens nothing
        unseal(
            RoundKeys(public, demo.secret_key[:32].ljust(32, b"\0")),
            demo.secret_key,
            1,
            sealed[0],
            3,
        )
    closed = await ballots.close_ballot(demo, ANA, ref)
    assert closed.cleaned_up
    with pytest.raises(KeyFileMissing):
        demo.round_keys.load(public)
    assert list(demo.ballot_keys_path.iterdir()) == []
    # No copy of the private key (wrapped or not) is anywhere in the database files.
    snapshot = await raw.read_files(demo.engine)
    assert snapshot.where(keys.private) == []
    # No sealed ballot is left in the database's pages or files; pg_wal keeps them for a
    # while, unreadable without the destroyed key.
    left = {name for blob in sealed for name in snapshot.where(blob) if not name.startswith("wal:")}
    assert left == set()


async def test_a_key_file_that_does_not_belong_to_an_open_round_is_destroyed(demo):
    orphan = RoundKeys.generate()
    demo.round_keys.save(orphan)  # as if the opener died before its round existed
    await ballot_cleanup.clean_up_after_close(demo)  # too young: it may be opening now
    assert demo.round_keys.load(orphan.public).private == orphan.private
    assert demo.round_keys.sweep(set(), older_than_seconds=0) == 1
    with pytest.raises(KeyFileMissing):
        demo.round_keys.load(orphan.public)


async def test_a_failed_opening_leaves_no_key_behind(demo):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    with pytest.raises(NotAllowed, match="Only a secretary"):
        await ballots.open_ballot(demo, present[3], ref)
    assert not demo.ballot_keys_path.exists() or list(demo.ballot_keys_path.iterdir()) == []


@pytest.fixture
def sqlite_only(demo):
    if demo.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    return demo


@pytest.fixture
def postgresql_only(demo):
    if demo.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's row versions")
    return demo


def _reader_holding_a_snapshot(path) -> sqlite3.Connection:
    """Another process in the middle of a read (the web companion serving a page)."""
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM people").fetchall()
    return reader


async def test_sqlite_clean_up_waits_for_a_reader_and_empties_the_wal(sqlite_only, caplog):
    ctx = sqlite_only
    ref, sealed, _public = await _cast_all(ctx)
    path = raw.sqlite_path(ctx.engine)
    reader = _reader_holding_a_snapshot(path)
    closing = asyncio.create_task(ballots.close_ballot(ctx, ANA, ref))
    await asyncio.sleep(2.5)
    reader.execute("COMMIT")  # the web companion's request ends
    reader.close()
    closed = await closing
    assert closed.cleaned_up
    assert "attempt 1 of" in caplog.text  # it was held up, and said so
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or all(blob not in wal.read_bytes() for blob in sealed)
    main = path.read_bytes()
    assert all(blob not in main for blob in sealed)


async def test_sqlite_clean_up_that_cannot_finish_is_an_error_and_is_retried(sqlite_only, caplog):
    ctx = sqlite_only
    ref, sealed, _public = await _cast_all(ctx)
    path = raw.sqlite_path(ctx.engine)
    reader = _reader_holding_a_snapshot(path)
    with caplog.at_level(logging.WARNING):
        closed = await ballots.close_ballot(ctx, ANA, ref)
    assert closed.status.value == "closed" and not closed.cleaned_up
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "not complete" in errors[0].getMessage()
    reader.execute("COMMIT")
    reader.close()
    report = await ballot_cleanup.clean_up_after_close(ctx)
    assert report.done
    assert (await ballots.round_status(ctx, ref)).cleaned_up
    assert all(blob not in path.read_bytes() for blob in sealed)


async def test_postgresql_clean_up_waits_for_old_snapshots_and_leaves_no_dead_rows(
    postgresql_only, caplog
):
    ctx = postgresql_only
    ref, sealed, _public = await _cast_all(ctx)
    url = ctx.engine.url
    reader = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    snapshot = reader.transaction(isolation="repeatable_read")
    await snapshot.start()
    assert await reader.fetchval("SELECT count(*) FROM sealed_ballots") == len(sealed)
    closing = asyncio.create_task(ballots.close_ballot(ctx, ANA, ref))
    await asyncio.sleep(1.0)
    # The old snapshot still sees the sealed ballots: VACUUM FULL would have kept them.
    assert await reader.fetchval("SELECT count(*) FROM sealed_ballots") == len(sealed)
    await snapshot.rollback()
    closed = await closing
    assert closed.cleaned_up
    assert "may still see the deleted ballots" in caplog.text
    await reader.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
    for table in ("sealed_ballots", "spent_tokens"):
        tuples = await reader.fetchval(
            "SELECT count(*) FROM "
            "generate_series(0, pg_relation_size($1::text::regclass) / 8192 - 1) AS b, "
            "LATERAL heap_page_items(get_raw_page($1::text, b::int))"
            " WHERE lp_flags <> 0",
            table,
        )
        assert tuples == 0, table  # not one line pointer left, dead or alive
    pages = await raw.read_postgres(ctx.engine)
    on_pages = {n for blob in sealed for n in pages.where(blob) if not n.startswith("wal:")}
    assert on_pages == set()
    await reader.close()


async def test_an_altered_sealed_ballot_stops_the_count(demo):
    ref, sealed, _public = await _cast_all(demo)
    async with demo.transaction() as session:
        ballot = await session.scalar(select(SealedBallot).limit(1))
        ballot.sealed = ballot.sealed[:-1] + bytes([ballot.sealed[-1] ^ 1])
    demo.clock.advance(hours=80)
    with pytest.raises(RuleViolation, match="1 stored ballot has been altered"):
        await ballots.close_ballot(demo, ANA, ref)
    status = await ballots.round_status(demo, ref)
    assert status.status.value == "open" and status.cast == len(sealed)  # nothing lost
