"""Benchmark the member import against a plain bulk insert of the same rows.

For 10,000 and 100,000 generated members (each in one or two of 20 assemblies, some
with an office, all with a last_active date, so assembly activity is written too) it
times, on SQLite and on PostgreSQL, in one process:
- Harmony's dry run: ``parse_members`` + ``registry.import_people(apply=False)``;
- Harmony's import into an empty register: the same with ``apply=True``;
- Harmony's re-import of the same file (every row unchanged), with ``apply=True``;
- the peer: ``csv.reader`` and one transaction of ``executemany`` INSERTs of the same
  people, memberships, offices and activity rows with the same driver (sqlite3, which
  aiosqlite wraps; asyncpg), with no checks at all.
The ratio is Harmony's import over the peer's. Times are medians of 3 runs at 10k and
of 1 run at 100k. Results go to bench/results/import_bench.json.

    .venv/bin/python bench/import_bench.py
    .venv/bin/python bench/import_bench.py --postgres postgresql://postgres@127.0.0.1/harmony_bench
    .venv/bin/python bench/import_bench.py --sqlite-only
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from datetime import time as day_time
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from harmony_matrix.importers.assemblies_toml import parse_assemblies
from harmony_matrix.importers.members_csv import parse_members
from harmony_matrix.services import registry
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage import migrations
from harmony_matrix.storage.database import make_engine, normalise_url

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10_000, 100_000)
ASSEMBLIES = 20
SEED = 20_261_202
TZ = "Europe/London"
TARGETS = {10_000: 3.0, 100_000: 30.0}  # seconds, dry run and import
REGISTER_TABLES = ("assembly_activity", "offices", "assembly_memberships", "audit_events", "people")


@dataclass
class Row:
    backend: str
    members: int
    dry_run_s: float
    import_s: float
    reimport_s: float
    peer_s: float
    ratio: float
    runs: int


def assemblies_toml() -> str:
    entries = []
    for n in range(ASSEMBLIES):
        rule = "everyone" if n == 0 else "none"
        entries.append(
            f'[[assembly]]\nslug = "group-{n}"\nname = "Group {n}"\n'
            f'automatic_membership = "{rule}"\n'
        )
    return "\n".join(entries)


def members_csv(count: int) -> str:
    rng = random.Random(SEED + count)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["matrix_id", "display_name", "status", "language", "assemblies", "offices", "last_active"]
    )
    for n in range(count):
        groups = rng.sample(range(1, ASSEMBLIES), rng.choice((1, 2)))
        roles = [f"group-{g}" + (":secretary" if rng.random() < 0.02 else "") for g in groups]
        writer.writerow(
            [
                f"@member{n}:server{n % 50}.example.org",
                f"Member Number {n}",
                "member" if rng.random() < 0.7 else "participant",
                rng.choice(("en", "cy", "fr", "pl")),
                ";".join(roles),
                "treasurer" if n % 1000 == 0 else "",
                f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}",
            ]
        )
    return out.getvalue()


def peer_rows(text_: str) -> tuple[list[tuple], list[tuple[str, str, str]], list[tuple[str, str]]]:
    """What the peer inserts: the cells as they are, dates made datetimes (no checks)."""
    zone = ZoneInfo(TZ)
    reader = csv.reader(io.StringIO(text_))
    next(reader)
    people, roles, offices = [], [], []
    for matrix_id, name, status, language, groups, office, active in reader:
        at = datetime.combine(date.fromisoformat(active), day_time(0, 0), tzinfo=zone)
        people.append((matrix_id, name, status, language, at))
        for part in groups.split(";"):
            slug, _sep, role = part.partition(":")
            roles.append((matrix_id, slug, role or "member"))
        if office:
            offices.append((matrix_id, office))
    return people, roles, offices


def sqlite_peer(path: Path, text_: str) -> None:
    people, roles, offices = peer_rows(text_)
    now = datetime.now(UTC).isoformat()
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.executemany(
                "INSERT INTO people (matrix_id, display_name, status, language, created_at, "
                "last_active_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (m, n, s, lang, now, at.astimezone(UTC).isoformat())
                    for m, n, s, lang, at in people
                ],
            )
            ids = dict(connection.execute("SELECT matrix_id, id FROM people"))
            slugs = dict(connection.execute("SELECT slug, id FROM assemblies"))
            connection.executemany(
                "INSERT INTO assembly_memberships (person_id, assembly_id, role, since) "
                "VALUES (?, ?, ?, ?)",
                [(ids[m], slugs[slug], role, now) for m, slug, role in roles],
            )
            connection.executemany(
                "INSERT INTO offices (person_id, title, since) VALUES (?, ?, ?)",
                [(ids[m], title, now) for m, title in offices],
            )
            last = {m: at.astimezone(UTC).isoformat() for m, _n, _s, _l, at in people}
            connection.executemany(
                "INSERT INTO assembly_activity (person_id, assembly_id, last_active_at) "
                "VALUES (?, ?, ?)",
                [(ids[m], slugs[slug], last[m]) for m, slug, _role in roles]
                + [(ids[m], slugs["group-0"], last[m]) for m in last],
            )
    finally:
        connection.close()


async def postgres_peer(url: str, text_: str) -> None:
    people, roles, offices = peer_rows(text_)
    now = datetime.now(UTC)
    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username,
        password=parsed.password, database=parsed.database,
    )  # fmt: skip
    try:
        async with connection.transaction():
            await connection.executemany(
                "INSERT INTO people (matrix_id, display_name, status, language, created_at, "
                "last_active_at) VALUES ($1, $2, $3, $4, $5, $6)",
                [(m, n, s, lang, now, at) for m, n, s, lang, at in people],
            )
            ids = dict(await connection.fetch("SELECT matrix_id, id FROM people"))
            slugs = dict(await connection.fetch("SELECT slug, id FROM assemblies"))
            await connection.executemany(
                "INSERT INTO assembly_memberships (person_id, assembly_id, role, since) "
                "VALUES ($1, $2, $3, $4)",
                [(ids[m], slugs[slug], role, now) for m, slug, role in roles],
            )
            await connection.executemany(
                "INSERT INTO offices (person_id, title, since) VALUES ($1, $2, $3)",
                [(ids[m], title, now) for m, title in offices],
            )
            last = {m: at for m, _n, _s, _l, at in people}
            await connection.executemany(
                "INSERT INTO assembly_activity (person_id, assembly_id, last_active_at) "
                "VALUES ($1, $2, $3)",
                [(ids[m], slugs[slug], last[m]) for m, slug, _role in roles]
                + [(ids[m], slugs["group-0"], last[m]) for m in last],
            )
    finally:
        await connection.close()


async def clear_register(ctx: ServiceContext) -> None:
    async with ctx.engine.begin() as connection:
        for table in REGISTER_TABLES:
            await connection.execute(text(f"DELETE FROM {table}"))


async def harmony_import(ctx: ServiceContext, text_: str, *, apply: bool) -> None:
    rows, problems = parse_members(text_, TZ)
    report = await registry.import_people(ctx, rows, problems, apply=apply)
    assert report.ok, report.rows[:3]
    assert report.applied == apply


async def timed(action: Awaitable[None]) -> float:
    start = time.perf_counter()
    await action
    return time.perf_counter() - start


async def measure(backend: str, url: str, sizes: tuple[int, ...]) -> list[Row]:
    engine = make_engine(url)
    ctx = ServiceContext(engine=engine)
    try:
        await migrations.upgrade(engine)
        await clear_register(ctx)
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM remits"))
            await connection.execute(text("DELETE FROM assemblies"))
        specs, problems = parse_assemblies(assemblies_toml(), "HPUK")
        assert (await registry.import_assemblies(ctx, specs, problems, apply=True)).applied
        rows = []
        for size in sizes:
            data = members_csv(size)
            runs = 3 if size <= 10_000 else 1
            dry, full, again, peer = [], [], [], []
            for _run in range(runs):
                await clear_register(ctx)
                dry.append(await timed(harmony_import(ctx, data, apply=False)))
                full.append(await timed(harmony_import(ctx, data, apply=True)))
                again.append(await timed(harmony_import(ctx, data, apply=True)))
                await clear_register(ctx)
                if backend == "sqlite":
                    path = Path(make_url(url).database or "")
                    start = time.perf_counter()
                    sqlite_peer(path, data)
                    peer.append(time.perf_counter() - start)
                else:
                    peer.append(await timed(postgres_peer(url, data)))
            row = Row(
                backend=backend,
                members=size,
                dry_run_s=statistics.median(dry),
                import_s=statistics.median(full),
                reimport_s=statistics.median(again),
                peer_s=statistics.median(peer),
                ratio=statistics.median(full) / statistics.median(peer),
                runs=runs,
            )
            rows.append(row)
            print(f"  measured {backend} {size:,}", file=sys.stderr, flush=True)
        await clear_register(ctx)
        return rows
    finally:
        await engine.dispose()


def table(rows: list[Row]) -> str:
    lines = [
        "| backend | members | dry run (s) | import (s) | re-import, unchanged (s) "
        "| peer: executemany (s) | import / peer |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.backend} | {r.members:,} | {r.dry_run_s:.2f} | {r.import_s:.2f} "
            f"| {r.reimport_s:.2f} | {r.peer_s:.2f} | {r.ratio:.1f}x |"
        )
    return "\n".join(lines)


def targets(rows: list[Row]) -> dict[str, bool]:
    return {
        f"{r.backend} {r.members:,}: dry run and import under {TARGETS[r.members]:.0f} s": (
            max(r.dry_run_s, r.import_s, r.reimport_s) < TARGETS[r.members]
        )
        for r in rows
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "HARMONY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/harmony_bench"
        ),
        help="an empty PostgreSQL database (created if missing); its tables are cleared",
    )
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args()
    sizes = tuple(args.sizes)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        rows += asyncio.run(measure("sqlite", f"sqlite:///{folder}/bench.db", sizes))
    if not args.sqlite_only:
        asyncio.run(create_database(args.postgres))
        rows += asyncio.run(measure("postgresql", normalise_url(args.postgres), sizes))
    print(table(rows))
    met = targets(rows)
    print()
    for name, ok in met.items():
        print(f"- {name}: {'met' if ok else 'MISSED'}")
    output = ROOT / "bench" / "results" / "import_bench.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "machine": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "seed": SEED,
        "rows": [asdict(r) for r in rows],
        "targets": met,
    }
    output.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (output.with_suffix(".md")).write_text(table(rows) + "\n", encoding="utf-8")
    print(f"\nwritten to {output.relative_to(ROOT)} and {output.with_suffix('.md').name}")
    return 0


async def create_database(url: str) -> None:
    parsed = make_url(normalise_url(url))
    admin = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username,
        password=parsed.password, database="postgres",
    )  # fmt: skip
    try:
        exists = await admin.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", parsed.database
        )
        if not exists:
            await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()


if __name__ == "__main__":
    sys.exit(main())
