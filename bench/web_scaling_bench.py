"""Benchmark the web companion as 1, 2 and 3 processes on one PostgreSQL database.

The companion keeps nothing in memory between requests, so a deployment scales it by
running more copies behind its proxy (``docker compose up --scale web=N``). This measures
what that buys: one throw-away PostgreSQL database (``harmony_bench_<random>``, created,
migrated and dropped) holds a vote set up as ``ballot_bench.py`` sets it up (its code),
with ``--ballots`` voters for each entry of ``--processes``. For each entry N, N
``harmony run --only web`` processes start (``web_processes.py``: the real command, each
on its own port, all on that database); each link is given to one of them in turn
(round-robin), its form fetched there for the CSRF token (not timed), then the load
generator (this process) posts every ``POST /vote/{link}/cast`` with ``--concurrency``
requests in flight across all N, and the processes are stopped (SIGTERM).

Figures per run: ballots per second (200s over the wall time), p50/p99 of a POST, and
where the CPU went (``cpu_use.py``: cores used on average by the web processes, the load
generator, PostgreSQL and anything else on the machine; CPU milliseconds per ballot of
the web processes and of PostgreSQL; connections opened). Per N, the medians of its runs
and the throughput over one process's: the figure, how far N processes go on this
machine. Before each run the bench waits for other jobs to leave the CPU idle (at most
``--wait-for-quiet`` seconds); a run they disturbed anyway (``cpu_use.OTHER_JOBS_LIMIT``)
is marked, and left out of the medians when its N has an undisturbed run. After
each run the round's sealed ballots and spent tokens must equal the receipts handed out
so far, and each process's own access log must show the casts it was given; at the end
the round is closed and every receipt must be counted exactly once, and nothing else.
Nothing is asserted about time. Results: bench/results/web_scaling_bench.json and .md.

    .venv/bin/python bench/web_scaling_bench.py                              # 1000 ballots per run
    .venv/bin/python bench/web_scaling_bench.py --processes 1 2 3 3 2 1      # each N twice
    .venv/bin/python bench/web_scaling_bench.py --ballots 4 --processes 1 2 --concurrency 2 \
        --wait-for-quiet 0                                                    # the smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cpu_use
import web_processes
from ballot_bench import (
    RECEIPT,
    ROOT,
    SECRET_KEY,
    FixedClock,
    close_and_check,
    context,
    create_database,
    drop_database,
    harmony_jobs,
    load,
    run_figures,
    set_up_vote,
    stored_ballots,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url

from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage import migrations
from harmony_matrix.storage.database import make_engine


@dataclass
class Setting:
    """What every run shares."""

    database_url: str
    keys: Path
    folder: Path
    concurrency: int
    #: Seconds to wait at most, before each run, for other jobs to leave the CPU alone.
    wait_for_quiet: int


async def measure(
    setting: Setting, processes: int, links: list[str], seed: int
) -> tuple[dict[str, Any], list[str]]:
    """One run: ``processes`` companions, ``links`` cast across them; its figures and
    the receipts handed out."""
    await cpu_use.wait_for_quiet(setting.wait_for_quiet)
    webs = [
        web_processes.start(setting.database_url, SECRET_KEY.decode(), setting.keys, setting.folder)
        for _ in range(processes)
    ]
    try:
        for web in webs:
            await web_processes.wait_ready(web)
        # Link n goes to process n % N; its form comes from that process too.
        shares = [
            await harmony_jobs(web.base, links[index::processes], seed)
            for index, web in enumerate(webs)
        ]
        jobs = [shares[n % processes][n // processes] for n in range(len(links))]
        load_average = os.getloadavg()[0]
        pids = [web.process.pid for web in webs]
        before = cpu_use.snapshot(pids)
        run, answers = await load(setting.concurrency, jobs, f"{processes} web")
        after = cpu_use.snapshot(pids)
    finally:
        exits = [web_processes.stop(web) for web in webs]
    cores = cpu_use.cores_used(before, after, run.seconds)
    receipts = []
    for body in answers:
        found = RECEIPT.search(body)
        assert found, body[:500]
        receipts.append(found.group(1))
    figures = {
        "processes": processes,
        "concurrency": setting.concurrency,
        **run_figures(run),
        "load_average_before": round(load_average, 2),
        "cores_used": cores,
        # Another job took a share of the cores: this run says less about Harmony.
        "disturbed": cores["other"] > cpu_use.OTHER_JOBS_LIMIT,
        "cpu_ms_per_ballot": {
            "web": round((after.web - before.web) * 1000 / max(run.ok, 1), 2),
            "postgresql": round((after.postgresql - before.postgresql) * 1000 / max(run.ok, 1), 2),
        },
        "casts_given": [len(links[index::processes]) for index in range(processes)],
        "casts_served": [web.casts_served() for web in webs],
        "exit_statuses": exits,
    }
    return figures, receipts


async def database_sessions(ctx: ServiceContext) -> int:
    """Connections made to this database so far (PostgreSQL 14 and later; counted as
    they end, and every web process has stopped when this is read)."""
    async with ctx.engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        )
    return int(count or 0)


async def bench(
    database_url: str,
    ballots_per_run: int,
    process_counts: list[int],
    concurrency: int,
    folder: Path,
    wait_for_quiet: int,
) -> dict[str, Any]:
    """Every run on one vote; ``folder`` holds the ballot keys and the processes' logs."""
    engine = make_engine(database_url)
    await migrations.upgrade(engine)
    await engine.dispose()
    (folder / "keys").mkdir()
    setting = Setting(database_url, folder / "keys", folder, concurrency, wait_for_quiet)
    # The companions run on the real clock: the Moot is called ten days back, so that
    # its ballot opened a few minutes ago and is open while they run.
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(now - timedelta(days=10, minutes=5))
    ctx = context(database_url, clock, setting.keys)
    started = time.perf_counter()
    vote = await set_up_vote(ctx, clock, ballots_per_run * len(process_counts))
    print(
        f"set-up: {len(vote.links)} voters present, links minted, "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    receipts: list[str] = []
    for index, processes in enumerate(process_counts):
        links = vote.links[index * ballots_per_run : (index + 1) * ballots_per_run]
        sessions = await database_sessions(ctx)
        figures, given = await measure(setting, processes, links, index)
        # Each new connection costs PostgreSQL a process: pools that close their overflow
        # connections show here, and in PostgreSQL's CPU per ballot.
        figures["connections_opened"] = await database_sessions(ctx) - sessions
        receipts += given
        figures["stored_after"] = await stored_ballots(ctx, vote.round_id)
        figures["expected_sealed"] = len(receipts)
        runs.append(figures)
        print(row(figures), flush=True)
    final = await close_and_check(ctx, clock, vote, receipts)
    await ctx.engine.dispose()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "backend": "postgresql",
        "ballots_per_run": ballots_per_run,
        "concurrency": concurrency,
        "runs": runs,
        "scaling": scaling(runs),
        "final": final,
    }


def scaling(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per N, the medians of its runs: ballots/s and their ratio to one process's (to
    the smallest N measured, if one was not), latencies, CPU per ballot. A disturbed
    run is left out when the same N has an undisturbed one (every run is still listed)."""
    by_count: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        by_count.setdefault(run["processes"], []).append(run)
    for count, chosen in by_count.items():
        by_count[count] = [run for run in chosen if not run["disturbed"]] or chosen

    def median(values: Iterable[float]) -> float:
        return float(statistics.median(values))

    base = median(run["per_second"] for run in by_count[min(by_count)])
    return [
        {
            "processes": count,
            "runs": sum(run["processes"] == count for run in runs),
            "runs_used": len(chosen),
            "per_second": round(median(run["per_second"] for run in chosen), 1),
            "ratio": round(median(run["per_second"] for run in chosen) / base, 2) if base else 0.0,
            "p50_ms": median(run["p50_ms"] for run in chosen),
            "p99_ms": median(run["p99_ms"] for run in chosen),
            "web_cpu_ms_per_ballot": median(run["cpu_ms_per_ballot"]["web"] for run in chosen),
            "postgresql_cpu_ms_per_ballot": median(
                run["cpu_ms_per_ballot"]["postgresql"] for run in chosen
            ),
        }
        for count, chosen in sorted(by_count.items())
    ]


HEADER = (
    "| web processes | ballots/s | p50 (ms) | p99 (ms) | cores used: web / load generator / "
    "PostgreSQL / other | machine busy | load average before | connections opened | "
    "casts served by each | sealed / expected |\n|---:|---:|---:|---:|---|---:|---:|---:|---|---:|"
)
SUMMARY_HEADER = (
    "| web processes | runs (used) | ballots/s | vs 1 process | p50 (ms) | p99 (ms) | "
    "web CPU per ballot (ms) | PostgreSQL CPU per ballot (ms) |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(run: dict[str, Any]) -> str:
    cores = run["cores_used"]
    disturbed = " (disturbed)" if run["disturbed"] else ""
    return (
        f"| {run['processes']} | {run['per_second']:,.0f} | {run['p50_ms']:.1f} | "
        f"{run['p99_ms']:.1f} | {cores['web']:.2f} / {cores['load_generator']:.2f} / "
        f"{cores['postgresql']:.2f} / {cores['other']:.2f}{disturbed} | "
        f"{cores['machine_busy']:.0%} | "
        f"{run['load_average_before']:.2f} | {run['connections_opened']} | "
        f"{' + '.join(str(n) for n in run['casts_served'])} | "
        f"{run['stored_after']['sealed']} / {run['expected_sealed']} |"
    )


def summary_row(line: dict[str, Any]) -> str:
    return (
        f"| {line['processes']} | {line['runs']} ({line['runs_used']}) | "
        f"{line['per_second']:,.0f} | "
        f"{line['ratio']:.2f}x | {line['p50_ms']:.1f} | {line['p99_ms']:.1f} | "
        f"{line['web_cpu_ms_per_ballot']:.1f} | {line['postgresql_cpu_ms_per_ballot']:.1f} |"
    )


def integrity_ok(result: dict[str, Any]) -> bool:
    final = result["final"]
    return (
        final["lost"] == 0
        and final["doubled"] == 0
        and final["closed"] == 1
        and final["receipts_given"] == final["distinct_receipts_given"]
        and final["counted"] == final["receipts_given"] == final["counted_in_result"]
        and all(
            run["ok"] == run["requests"]
            and run["casts_served"] == run["casts_given"]
            and all(status == 0 for status in run["exit_statuses"])
            and run["stored_after"]["sealed"] == run["expected_sealed"]
            and run["stored_after"]["spent"] == run["expected_sealed"]
            for run in result["runs"]
        )
    )


def report(result: dict[str, Any]) -> str:
    final = result["final"]
    runs = "\n".join(row(run) for run in result["runs"])
    summary = "\n".join(summary_row(line) for line in result["scaling"])
    return (
        f"{result['machine']}, PostgreSQL; {result['ballots_per_run']} ballots per run, "
        f"{result['concurrency']} in flight across the processes. The load generator, "
        "every web process and PostgreSQL share the machine's cores; medians per number "
        "of processes first, then each run in order.\n\n"
        f"{SUMMARY_HEADER}\n{summary}\n\n{HEADER}\n{runs}\n\n"
        f"ballots: {final['receipts_given']} receipts given, {final['counted']} counted, "
        f"{final['lost']} lost, {final['doubled']} doubled; every process served its share "
        f"and stopped cleanly: {'MET' if integrity_ok(result) else 'NOT met'}"
    )


def write_results(result: dict[str, Any], text: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "web_scaling_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "web_scaling_bench.md").write_text(f"# web_scaling_bench ({result['date']})\n\n{text}\n")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    database_url = await create_database(args.postgres)
    print(f"database: {make_url(database_url).database}", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="harmony-web-scaling-") as folder:
            return await bench(
                database_url,
                args.ballots,
                args.processes,
                args.concurrency,
                Path(folder),
                args.wait_for_quiet,
            )
    finally:
        await drop_database(database_url)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("HARMONY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432"),
        help="a PostgreSQL server URL; the bench creates and drops its own database there",
    )
    parser.add_argument("--ballots", type=int, default=1000, help="ballots per run")
    parser.add_argument(
        "--processes",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        help="web processes of each run, in order (repeat a number to run it again)",
    )
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    parser.add_argument(
        "--wait-for-quiet",
        type=int,
        default=120,
        metavar="SECONDS",
        help="before each run, wait at most this long for other jobs to leave the CPU idle",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    text = report(result)
    print()
    print(text)
    write_results(result, text, args.out)
    return 0 if integrity_ok(result) else 1


if __name__ == "__main__":
    sys.exit(main())
