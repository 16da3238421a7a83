"""The attack of issue 6, tried as an attacker with the database files would.

A meeting of 38 voters, each casting a distinct ballot in a known order (the outside
record a web server's access log would give). At three moments (links delivered,
every ballot cast, round closed and cleaned up) the raw files are copied: the SQLite
file, WAL and shared memory; PostgreSQL's pages (heap, index, free space), its files on
disk, ``pg_wal`` and the server log. Each test states one thing the attacker must not
learn, and looks for it in the bytes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest

from harmony_matrix.errors import RuleViolation
from harmony_matrix.services import ballots
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.voting.links import spent_hash
from tests.services.helpers import ANA

from . import raw
from .helpers import deliver_links, meeting_at_vote, path_of, token_of, voters
from .test_secrecy import _distinct_ballots

ALL_VOTERS = 38


@dataclass
class Attack:
    ref: str
    #: Who voted, in the order they voted (the outside record).
    order: list[str]
    links: dict[str, str]
    receipts: dict[str, str]
    scores: dict[str, list[int]]
    delivered: raw.Snapshot
    open: raw.Snapshot
    closed: raw.Snapshot
    #: Every log record of the whole round, every logger at DEBUG.
    log: str
    #: The log records written while the 38 voted.
    casting_log: str
    #: What the PostgreSQL server logged during the round, if readable.
    server_log: bytes | None


#: The attack runs once per test run; each test below examines what it found.
_FOUND: dict[str, Attack] = {}


@pytest.fixture
async def attack(demo, caplog) -> Attack:
    if demo.engine.dialect.name not in _FOUND:
        _FOUND[demo.engine.dialect.name] = await _run_attack(demo, caplog)
    return _FOUND[demo.engine.dialect.name]


async def _run_attack(ctx: ServiceContext, caplog: pytest.LogCaptureFixture) -> Attack:
    server_log = None
    if ctx.engine.dialect.name == "postgresql":
        path = await raw.postgres_log_path(ctx.engine)
        if path is None or not path.exists():
            if raw.REQUIRED:
                pytest.fail("the PostgreSQL server log cannot be found")
        else:
            server_log = raw.ServerLog(path)
    engine_logger = logging.getLogger("sqlalchemy.engine")
    caplog.set_level(logging.DEBUG)
    engine_logger.setLevel(logging.DEBUG)  # statements and result rows
    try:
        present = await voters(ctx, ALL_VOTERS)
        assert len(present) == ALL_VOTERS
        ref = await meeting_at_vote(ctx, present)
        await ballots.open_ballot(ctx, ANA, ref)
        links = await deliver_links(ctx)
        delivered = await raw.read_files(ctx.engine)
        receipts, scores = {}, {}
        casting_starts = len(caplog.records)
        for who, ballot in zip(present, _distinct_ballots(ALL_VOTERS), strict=True):
            # Three uses of the link at once, as a double-tap on the button makes:
            # one ballot, two refusals.
            tries = await asyncio.gather(
                *(ballots.cast_ballot(ctx, path_of(links[who]), ballot) for _ in range(3)),
                return_exceptions=True,
            )
            stored = [t for t in tries if isinstance(t, str)]
            assert len(stored) == 1, tries
            assert all(isinstance(t, RuleViolation) for t in tries if t not in stored), tries
            receipts[who] = stored[0]
            scores[who] = [ballot[1], ballot[2], ballot[3]]
            # Two more uses of the link at once, as a double-tap on the button makes.
            again = await asyncio.gather(
                *(ballots.cast_ballot(ctx, path_of(links[who]), ballot) for _ in range(2)),
                return_exceptions=True,
            )
            assert all(isinstance(error, RuleViolation) for error in again), again
            ctx.clock.advance(minutes=1)  # type: ignore[attr-defined]
        casting_log = "\n".join(r.getMessage() for r in caplog.records[casting_starts:])
        opened = await raw.read_files(ctx.engine)
        await ballots.close_ballot(ctx, ANA, ref)
        closed = await raw.read_files(ctx.engine)
    finally:
        engine_logger.setLevel(logging.WARNING)
    log = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    return Attack(
        ref,
        present,
        links,
        receipts,
        scores,
        delivered,
        opened,
        closed,
        log,
        casting_log,
        server_log.since_start() if server_log else None,
    )


def match_by_order(snapshot: raw.Snapshot, attack: Attack) -> int:
    """The attacker's best try at pairing voters with published ballots by position:
    wherever the published receipts appear in one blob, read them in the order they
    sit and pair them with the outside record of who voted when. Returns how many
    voters this names correctly."""
    best = 0
    for name in snapshot.blobs:
        found = [
            (snapshot.offset(name, receipt), who)
            for who, receipt in attack.receipts.items()
            if snapshot.offset(name, receipt) >= 0
        ]
        guessed = [who for _offset, who in sorted(found)]
        voters_in_order = [who for who in attack.order if who in guessed]
        best = max(best, sum(a == b for a, b in zip(guessed, voters_in_order, strict=True)))
    return best


async def test_no_link_is_written_to_any_file_or_log(attack):
    for who, url in attack.links.items():
        token = token_of(url)
        for moment in (attack.delivered, attack.open, attack.closed):
            assert moment.where(token) == [], (who, moment.where(token))
        assert token not in attack.log
        if attack.server_log is not None:
            assert token.encode() not in attack.server_log


async def test_a_copy_taken_while_the_round_is_open_names_no_voter(attack):
    # By value: no receipt (published after the close) is stored in clear while open.
    for who, receipt in attack.receipts.items():
        assert attack.open.where(receipt) == [], (who, attack.open.where(receipt))
    # No running tally: no voter's scores sit in the files in clear. (pg_wal is left
    # out of this one: it is shared by every database of the server and holds the
    # published ballots of earlier tests, whose scores look the same; the receipts
    # above are unique to this round, and were looked for in pg_wal too.)
    pages = raw.Snapshot({n: b for n, b in attack.open.blobs.items() if not n.startswith("wal:")})
    in_clear = [
        who
        for who, row in attack.scores.items()
        if pages.where(", ".join(map(str, row)).join("[]"))
        or pages.where(",".join(map(str, row)).join("[]"))
    ]
    assert in_clear == []
    # By position, with the outside record of who voted when.
    assert match_by_order(attack.open, attack) == 0


async def test_after_the_close_the_order_of_storage_is_not_the_order_of_voting(attack):
    # Published ballots are stored after the close; wherever they are, their order is
    # random: a perfect match with the casting order is 1 in 38!, a partial one of
    # more than a third of the voters about 1 in 10^7.
    assert match_by_order(attack.closed, attack) < ALL_VOTERS / 3
    # The spent hashes (which pair with a ballot by transaction) are gone from every
    # page and file; in pg_wal they remain, but nothing pairs them with a token.
    for url in attack.links.values():
        spent = spent_hash(token_of(url))
        assert [n for n in attack.closed.where(spent) if not n.startswith("wal:")] == []


async def test_the_application_log_at_debug_names_no_voter_and_no_ballot(attack):
    assert "INSERT INTO" in attack.log  # SQL logging really was on, at DEBUG
    for who in attack.order:
        receipt = attack.receipts[who]
        assert receipt not in attack.log
        assert spent_hash(token_of(attack.links[who])) not in attack.log
    # The voter's own row (their Matrix ID) is never logged while they vote.
    named = [who for who in attack.order if who in attack.casting_log]
    assert named == []


async def test_the_postgresql_server_log_holds_no_trace_of_a_ballot(attack):
    if attack.server_log is None:
        pytest.skip("SQLite has no server log")
    log = attack.server_log
    assert b"duplicate key" not in log and b"token_hash" not in log
    for who, url in attack.links.items():
        assert spent_hash(token_of(url)).encode() not in log, who
        assert attack.receipts[who].encode() not in log
