"""Benchmark casting secret ballots over HTTP against a bare aiohttp handler.

One throw-away database (PostgreSQL ``harmony_bench_<random>``, created, migrated with
``migrations.upgrade`` and dropped; or a SQLite file for the smoke test) holds the demo
party plus ``--ballots`` x (number of concurrency levels) Members of the Operational
Working Group, all present at a Moot brought to its vote; the ballot is opened and every
voter's link is minted and confirmed through ``services.ballot_delivery``, as the bot
does. Two servers then run, each in a process of its own (not the load generator's
event loop), on 127.0.0.1:

- Harmony: ``make_app`` (the companion as ``harmony web`` builds it, with the access
  logger and the log-redaction filter; the rate limit off: ``ballot_posts_per_minute``
  0) on its own engine;
- bare: an aiohttp app whose one handler reads the same form and does one INSERT (one
  row per request, one transaction) through the same driver and pool settings
  (``make_engine``).

At each concurrency level (1, 10, 100 by default), ``--ballots`` requests go to each
server from this process: for Harmony, ``GET /vote/{link}/ballot`` once per link for its
CSRF token (not timed), then ``POST /vote/{link}/cast`` (timed); for the bare handler the
same form to ``POST /cast``. Figures: ballots per second (requests over the run's wall
time), p50 and p99 of the POST's latency, and Harmony's throughput over the bare one's.

After each level the stored rows are counted: sealed ballots of the round must equal
the receipts handed out so far; the bare table's rows the bare 200s. At the end the
round is closed and counted: every receipt given is in ``counted_ballots`` exactly once,
and nothing else. Targets (issue 10): Harmony at least 30% of the bare handler's
throughput, p99 under 100 ms at concurrency 100; they are printed MET or NOT met, never
asserted. Results go to bench/results/ballot_bench.json and ballot_bench.md.

    .venv/bin/python bench/ballot_bench.py                        # 1000 ballots per level
    .venv/bin/python bench/ballot_bench.py --ballots 200 --concurrency 1 10
    .venv/bin/python bench/ballot_bench.py --sqlite --ballots 5 --concurrency 1 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from harmony_matrix.companion.app import make_app  # noqa: E402
from harmony_matrix.companion.security import AccessLogger, install_log_redaction  # noqa: E402
from harmony_matrix.config import WebSettings  # noqa: E402
from harmony_matrix.constitution.eligibility import Status  # noqa: E402
from harmony_matrix.constitution.process import PreparationStep  # noqa: E402
from harmony_matrix.demo import load_demo  # noqa: E402
from harmony_matrix.services import (  # noqa: E402
    ballot_delivery,
    ballots,
    debate,
    meetings,
    preparation,
    roll_call,
)
from harmony_matrix.services.context import ServiceContext  # noqa: E402
from harmony_matrix.services.lookup import meeting_by_ref  # noqa: E402
from harmony_matrix.storage import migrations  # noqa: E402
from harmony_matrix.storage.database import make_engine, normalise_url  # noqa: E402
from harmony_matrix.storage.models import (  # noqa: E402
    Assembly,
    AssemblyMembership,
    Attendance,
    BallotRound,
    CountedBallot,
    OutboxMessage,
    Person,
    Role,
    SealedBallot,
    SpentToken,
)

SECRET_KEY = b"ballot-bench-secret-key-0123456789"
OWG = "operational-working-group"
ANA = "@ana:harmony.uk"  # the demo's secretary of the OWG
OPTIONS = ("Meet monthly", "Meet every two months", "Meet yearly")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SCORE_FIELD = re.compile(r'name="score-([0-9]+)"')
RECEIPT = re.compile(r'id="receipt-code"[^>]*>\s*(?:<[^>]+>\s*)*([^<\s]+)')
TARGET_RATIO = 0.30
TARGET_P99_MS = 100.0
BARE_TABLE = "bench_bare_ballots"


class FixedClock:
    """The setup's clock: moved by hand, like the tests' clock."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def __call__(self) -> datetime:
        return self.current


def context(url: str, clock: FixedClock, keys: Path, public_base_url: str = "") -> ServiceContext:
    return ServiceContext(
        engine=make_engine(url),
        clock=clock,
        secret_key=SECRET_KEY,
        ballot_keys_path=keys,
        public_base_url=public_base_url or "http://127.0.0.1:8080",
    )


# --- The database --------------------------------------------------------------------


async def create_database(server_url: str) -> str:
    """A new PostgreSQL database ``harmony_bench_<random>``; its URL."""
    url = make_url(normalise_url(server_url))
    name = f"harmony_bench_{secrets.token_hex(4)}"
    admin = await _admin(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def drop_database(database_url: str) -> None:
    url = make_url(normalise_url(database_url))
    admin = await _admin(url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await admin.close()


async def _admin(url: Any) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database="postgres",
    )


# --- Setting up a vote ---------------------------------------------------------------


@dataclass
class Vote:
    ref: str
    round_id: int
    #: Link paths (``ROUND.TOKEN.EXPIRES.SIGNATURE``), one per voter.
    links: list[str]
    #: The web servers' clock: the moment the ballot opened.
    opened_at: datetime
    closes_at: datetime


async def set_up_vote(ctx: ServiceContext, clock: FixedClock, voters: int) -> Vote:
    """The demo party, ``voters`` more OWG Members all present at a Moot at its vote, the
    ballot open and every link minted and confirmed as the bot does."""
    await load_demo(ctx)
    called = await meetings.call_moot(ctx, ANA, OWG, "How often should we meet?")
    await preparation.record_preparation(
        ctx, ANA, called.ref, PreparationStep.FACTS, "Attendance figures"
    )
    await preparation.record_preparation(
        ctx, ANA, called.ref, PreparationStep.MATERIALS, "Slides, large print copies"
    )
    starts = clock.current + timedelta(days=10)
    await preparation.schedule(
        ctx, ANA, called.ref, starts, place="Community Hall", accessibility="Step-free"
    )
    await preparation.notify(ctx, ANA, called.ref)
    clock.current = starts
    await roll_call.open_meeting(ctx, ANA, called.ref)
    await _add_present_members(ctx, called.ref, voters)
    await debate.start_debate(ctx, ANA, called.ref)
    for option in OPTIONS:
        await debate.add_option(ctx, ANA, called.ref, option)
    await debate.end_debate(ctx, ANA, called.ref)
    opened = await ballots.open_ballot(ctx, ANA, called.ref)
    links = await _deliver_links(ctx)
    assert len(links) == voters, (len(links), voters)
    assert opened.closes_at is not None
    return Vote(called.ref, opened.round_id, links, clock.current, opened.closes_at)


async def _add_present_members(ctx: ServiceContext, ref: str, count: int) -> None:
    """Insert ``count`` Members of the OWG and their attendance directly (the roll call
    one by one would take minutes and measures nothing here)."""
    now = ctx.now()
    async with ctx.transaction() as session:
        owg = await session.scalar(select(Assembly.id).where(Assembly.slug == OWG))
        meeting_id = (await meeting_by_ref(session, ref)).id
        people = [
            Person(
                matrix_id=f"@bench{n}:bench.example.org",
                display_name=f"Bench Voter {n}",
                status=Status.MEMBER,
                language="en",
                created_at=now - timedelta(days=400),
                last_active_at=now - timedelta(days=1),
            )
            for n in range(count)
        ]
        session.add_all(people)
        await session.flush()
        session.add_all(
            AssemblyMembership(
                person_id=p.id, assembly_id=owg, role=Role.MEMBER, since=now - timedelta(days=400)
            )
            for p in people
        )
        session.add_all(Attendance(meeting_id=meeting_id, person_id=p.id, at=now) for p in people)


async def _deliver_links(ctx: ServiceContext) -> list[str]:
    """``prepare`` then ``confirm`` every queued ballot message (16 at a time)."""
    async with ctx.transaction() as session:
        queued = list(
            await session.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.voting_right_id.is_not(None), OutboxMessage.sent_at.is_(None)
                )
            )
        )
    links: list[str] = []

    async def deliver(outbox_id: int) -> None:
        prepared = await ballot_delivery.prepare_ballot_message(ctx, outbox_id)
        url = next(line for line in prepared.body.split("\n") if "/vote/" in line)
        assert await ballot_delivery.confirm_ballot_message(ctx, prepared)
        links.append(url.rsplit("/vote/", 1)[1])

    for start in range(0, len(queued), 16):
        await asyncio.gather(*(deliver(i) for i in queued[start : start + 16]))
    return links


# --- The servers ---------------------------------------------------------------------


def serve(kind: str, url: str, opened_at: str, keys: str, ready: Any) -> None:
    """A server process: ``kind`` is "harmony" or "bare"; sends its port on ``ready``,
    then serves until terminated."""
    asyncio.run(_serve(kind, url, datetime.fromisoformat(opened_at), Path(keys), ready))


async def _serve(kind: str, url: str, opened_at: datetime, keys: Path, ready: Any) -> None:
    install_log_redaction()
    clock = FixedClock(opened_at)
    if kind == "harmony":
        ctx = context(url, clock, keys)
        app = make_app(ctx, WebSettings(ballot_posts_per_minute=0))
        engine = ctx.engine
    else:
        engine = make_engine(url)
        app = bare_app(engine)
    runner = web.AppRunner(app, access_log_class=AccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    ready.send(runner.addresses[0][1])
    try:
        await asyncio.Event().wait()  # until the parent terminates the process
    finally:
        await runner.cleanup()
        await engine.dispose()


def bare_app(engine: Any) -> web.Application:
    """The peer: read the form, one INSERT in one transaction, answer."""
    statement = text(f"INSERT INTO {BARE_TABLE} (id, scores) VALUES (:id, :scores)")

    async def cast(request: web.Request) -> web.Response:
        data = await request.post()
        scores = ",".join(str(v) for k, v in data.items() if k.startswith("score-"))
        async with engine.begin() as connection:
            await connection.execute(statement, {"id": secrets.token_hex(16), "scores": scores})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/cast", cast)
    return app


class Server:
    def __init__(self, kind: str, url: str, vote: Vote, keys: Path) -> None:
        spawn = multiprocessing.get_context("spawn")
        receive, send = spawn.Pipe(duplex=False)
        self.process = spawn.Process(
            target=serve,
            args=(kind, url, vote.opened_at.isoformat(), str(keys), send),
            daemon=True,
        )
        self.process.start()
        if not receive.poll(120):
            self.process.terminate()
            raise RuntimeError(f"the {kind} server did not start")
        self.base = f"http://127.0.0.1:{receive.recv()}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(30)


# --- The load ------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    concurrency: int
    requests: int
    ok: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def load(
    concurrency: int, jobs: list[tuple[str, dict[str, str]]], server: str
) -> tuple[Run, list[str]]:
    """POST each (url, form) with ``concurrency`` requests in flight; the run and the
    receipts (or bodies) of the 200s."""
    queue: asyncio.Queue[tuple[str, dict[str, str]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []
    answers: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while not queue.empty():
                url, form = queue.get_nowait()
                started = time.perf_counter()
                async with session.post(url, data=form) as response:
                    body = await response.text()
                elapsed = (time.perf_counter() - started) * 1000
                if response.status == 200:
                    latencies.append(elapsed)
                    answers.append(body)
                else:
                    print(f"  {server}: HTTP {response.status}", file=sys.stderr)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Run(server, concurrency, len(jobs), len(answers), seconds, latencies), answers


async def harmony_jobs(base: str, links: list[str], seed: int) -> list[tuple[str, dict[str, str]]]:
    """For each link, its form (GET, not timed) made into a cast POST. Ten at a time
    whatever the level: this step is not measured and must not fail for load."""
    semaphore = asyncio.Semaphore(10)
    connector = aiohttp.TCPConnector(limit=10)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def job(n: int, link: str) -> tuple[str, dict[str, str]]:
            async with semaphore, session.get(f"{base}/vote/{link}/ballot") as response:
                html = await response.text()
                assert response.status == 200, (response.status, html[:500])
            token = CSRF.search(html)
            assert token, html[:500]
            fields = sorted(set(SCORE_FIELD.findall(html)), key=int)
            form = {"csrf_token": token.group(1)}
            form |= {f"score-{f}": str((seed + n + i) % 6) for i, f in enumerate(fields)}
            return f"{base}/vote/{link}/cast", form

        return list(await asyncio.gather(*(job(n, link) for n, link in enumerate(links))))


# --- Counting ------------------------------------------------------------------------


async def stored_ballots(ctx: ServiceContext, round_id: int) -> dict[str, int]:
    """The round's sealed ballots, spent tokens and counted ballots."""
    async with ctx.engine.connect() as connection:

        async def count(table: Any, *where: Any) -> int:
            return int(
                await connection.scalar(select(func.count()).select_from(table).where(*where)) or 0
            )

        return {
            "sealed": await count(SealedBallot, SealedBallot.round_id == round_id),
            "spent": await count(SpentToken, SpentToken.round_id == round_id),
            "counted": await count(CountedBallot, CountedBallot.round_id == round_id),
        }


async def stored(ctx: ServiceContext, round_id: int) -> dict[str, int]:
    """:func:`stored_ballots` and the bare handler's rows."""
    counts = await stored_ballots(ctx, round_id)
    async with ctx.engine.connect() as connection:
        counts["bare"] = int(
            await connection.scalar(text(f"SELECT count(*) FROM {BARE_TABLE}")) or 0
        )
    return counts


async def close_and_check(
    ctx: ServiceContext, clock: FixedClock, vote: Vote, receipts: list[str]
) -> dict[str, int]:
    """Close the round (after its closing time) and compare the counted ballots with
    the receipts handed out: lost = given but not counted; doubled = counted twice or
    counted without having been given."""
    clock.current = vote.closes_at + timedelta(minutes=1)
    view = await ballots.close_ballot(ctx, ANA, vote.ref)
    async with ctx.engine.connect() as connection:
        counted = list(
            await connection.scalars(
                select(CountedBallot.receipt).where(CountedBallot.round_id == vote.round_id)
            )
        )
        status = await connection.scalar(
            select(BallotRound.status).where(BallotRound.id == vote.round_id)
        )
    given = set(receipts)
    return {
        "receipts_given": len(receipts),
        "distinct_receipts_given": len(given),
        "counted": len(counted),
        "counted_in_result": int(view.cast),
        "lost": len(given - set(counted)),
        "doubled": len(counted) - len(set(counted)) + len(set(counted) - given),
        "closed": int(str(status) in ("closed", "BallotRoundStatus.CLOSED")),
    }


# --- The run -------------------------------------------------------------------------


@dataclass
class Level:
    concurrency: int
    bare: dict[str, float]
    harmony: dict[str, float]
    ratio: float
    stored_after: dict[str, int]
    expected_sealed: int
    expected_bare: int


async def bench(database_url: str, ballots_per_level: int, levels: list[int]) -> dict[str, Any]:
    keys = Path(tempfile.mkdtemp(prefix="harmony-bench-keys-"))
    engine = make_engine(database_url)
    await migrations.upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(
            text(f"CREATE TABLE {BARE_TABLE} (id VARCHAR(32) PRIMARY KEY, scores TEXT)")
        )
    await engine.dispose()
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    ctx = context(database_url, clock, keys)
    started = time.perf_counter()
    vote = await set_up_vote(ctx, clock, ballots_per_level * len(levels))
    print(
        f"set-up: {len(vote.links)} voters present, links minted, "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    harmony = Server("harmony", database_url, vote, keys)
    bare = Server("bare", database_url, vote, keys)
    results: list[Level] = []
    receipts: list[str] = []
    bare_ok = 0
    try:
        for index, concurrency in enumerate(levels):
            links = vote.links[index * ballots_per_level : (index + 1) * ballots_per_level]
            jobs = await harmony_jobs(harmony.base, links, index)
            bare_jobs = [(f"{bare.base}/cast", {**form, "csrf_token": "-"}) for _url, form in jobs]
            bare_run, bare_answers = await load(concurrency, bare_jobs, "bare")
            harmony_run, answers = await load(concurrency, jobs, "harmony")
            bare_ok += len(bare_answers)
            for body in answers:
                found = RECEIPT.search(body)
                assert found, body[:500]
                receipts.append(found.group(1))
            counts = await stored(ctx, vote.round_id)
            level = Level(
                concurrency,
                run_figures(bare_run),
                run_figures(harmony_run),
                harmony_run.per_second / bare_run.per_second if bare_run.per_second else 0.0,
                counts,
                expected_sealed=len(receipts),
                expected_bare=bare_ok,
            )
            results.append(level)
            print(_row(level), flush=True)
    finally:
        harmony.stop()
        bare.stop()
    final = await close_and_check(ctx, clock, vote, receipts)
    await ctx.engine.dispose()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "backend": make_url(normalise_url(database_url)).get_backend_name(),
        "ballots_per_level": ballots_per_level,
        "levels": [asdict(level) for level in results],
        "final": final,
    }


def run_figures(run: Run) -> dict[str, float]:
    return {
        "requests": run.requests,
        "ok": run.ok,
        "seconds": round(run.seconds, 3),
        "per_second": round(run.per_second, 1),
        "p50_ms": round(run.percentile(50), 2),
        "p99_ms": round(run.percentile(99), 2),
    }


HEADER = (
    "| concurrency | bare ballots/s | Harmony ballots/s | ratio | Harmony p50 (ms) | "
    "Harmony p99 (ms) | bare p50 (ms) | bare p99 (ms) | stored: sealed / expected | "
    "bare rows / expected |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _row(level: Level) -> str:
    h, b = level.harmony, level.bare
    return (
        f"| {level.concurrency} | {b['per_second']:,.0f} | {h['per_second']:,.0f} | "
        f"{level.ratio:.0%} | {h['p50_ms']:.1f} | {h['p99_ms']:.1f} | {b['p50_ms']:.1f} | "
        f"{b['p99_ms']:.1f} | {level.stored_after['sealed']} / {level.expected_sealed} | "
        f"{level.stored_after['bare']} / {level.expected_bare} |"
    )


def verdicts(result: dict[str, Any]) -> list[str]:
    levels = result["levels"]
    top = max(levels, key=lambda level: level["concurrency"])
    lines = []
    for level in levels:
        met = level["ratio"] >= TARGET_RATIO
        lines.append(
            f"throughput at concurrency {level['concurrency']}: {level['ratio']:.0%} of bare "
            f"(target >= {TARGET_RATIO:.0%}): {'MET' if met else 'NOT met'}"
        )
    p99 = top["harmony"]["p99_ms"]
    lines.append(
        f"p99 at concurrency {top['concurrency']}: {p99:.1f} ms (target < {TARGET_P99_MS:.0f} "
        f"ms{'' if top['concurrency'] == 100 else ', the target is set at 100'}): "
        f"{'MET' if p99 < TARGET_P99_MS else 'NOT met'}"
    )
    final = result["final"]
    intact = integrity_ok(result)
    lines.append(
        f"ballots: {final['receipts_given']} receipts given, {final['counted']} counted, "
        f"{final['lost']} lost, {final['doubled']} doubled: {'MET' if intact else 'NOT met'}"
    )
    return lines


def integrity_ok(result: dict[str, Any]) -> bool:
    final = result["final"]
    return (
        final["lost"] == 0
        and final["doubled"] == 0
        and final["closed"] == 1
        and final["counted"] == final["receipts_given"] == final["counted_in_result"]
        and all(
            level["stored_after"]["sealed"] == level["expected_sealed"]
            and level["stored_after"]["spent"] == level["expected_sealed"]
            and level["stored_after"]["bare"] == level["expected_bare"]
            for level in result["levels"]
        )
    )


def write_results(result: dict[str, Any], table: str, lines: list[str], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "ballot_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "ballot_bench.md").write_text(
        f"# ballot_bench ({result['date']}, {result['machine']}, {result['backend']}, "
        f")\n\n{table}\n\n" + "\n".join(f"- {line}" for line in lines) + "\n"
    )


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if args.sqlite:
        folder = Path(tempfile.mkdtemp(prefix="harmony-bench-"))
        return await bench(f"sqlite:///{folder / 'bench.db'}", args.ballots, args.concurrency)
    database_url = await create_database(args.postgres)
    print(f"database: {make_url(database_url).database}", flush=True)
    try:
        return await bench(database_url, args.ballots, args.concurrency)
    finally:
        await drop_database(database_url)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("HARMONY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432"),
        help="a PostgreSQL server URL; the bench creates and drops its own database there",
    )
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead")
    parser.add_argument("--ballots", type=int, default=1000, help="ballots per level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    table = HEADER + "\n" + "\n".join(_row(Level(**level)) for level in result["levels"])
    lines = verdicts(result)
    print()
    print(f"backend: {result['backend']}")
    print(table)
    for line in lines:
        print(line)
    write_results(result, table, lines, args.out)
    return 0 if integrity_ok(result) else 1


if __name__ == "__main__":
    sys.exit(main())
