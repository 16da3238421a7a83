"""What an attacker reads: the database's bytes below SQL, and the server's log.

SQLite: the main file, its write-ahead log and shared-memory index, byte for byte.
PostgreSQL: every page of every relation of the database (heap, index, TOAST, free space
included) through ``pageinspect``, the database's files on disk when readable, every
segment in ``pg_wal`` (the live log, not an archive), and the server log.
Nothing here goes through the application's models: only bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

REQUIRED = bool(os.environ.get("HARMONY_REQUIRE_POSTGRES"))


@dataclass
class Snapshot:
    """Named blobs of raw bytes, searched for secrets."""

    blobs: dict[str, bytes] = field(default_factory=dict)

    def where(self, needle: str | bytes) -> list[str]:
        """The names of the blobs that contain ``needle`` (as ASCII/UTF-8 bytes)."""
        raw = needle.encode() if isinstance(needle, str) else needle
        return [name for name, blob in self.blobs.items() if raw in blob]

    def offset(self, name: str, needle: str | bytes) -> int:
        raw = needle.encode() if isinstance(needle, str) else needle
        return self.blobs[name].find(raw)


def sqlite_path(engine: AsyncEngine) -> Path:
    database = engine.url.database
    assert database, "an SQLite database in a file"
    return Path(database)


def read_sqlite(engine: AsyncEngine) -> Snapshot:
    """The main file, ``-wal`` and ``-shm``, as a thief copying the folder gets them."""
    path = sqlite_path(engine)
    snapshot = Snapshot()
    for suffix in ("", "-wal", "-shm", "-journal"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            snapshot.blobs[f"sqlite{suffix or '-main'}"] = part.read_bytes()
    return snapshot


async def _connect(engine: AsyncEngine) -> asyncpg.Connection:
    """A plain connection beside the application's engine, so that the attacker's own
    queries never show up in the application's log."""
    url = engine.url
    return await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )


async def read_postgres(engine: AsyncEngine) -> Snapshot:
    """Every page of the database, its files on disk, and every WAL segment."""
    snapshot = Snapshot()
    connection = await _connect(engine)
    try:
        await connection.execute("CHECKPOINT")  # dirty buffers to disk, as a copy sees
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        pages = await connection.fetch(
            "SELECT c.relname, get_raw_page(c.oid::regclass::text, 'main', b) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, "
            "LATERAL generate_series(0, pg_relation_size(c.oid) / 8192 - 1) AS b "
            "WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 'i', 't') "
            "AND c.relpersistence = 'p'"
        )
        by_relation: dict[str, list[bytes]] = {}
        for name, page in pages:
            by_relation.setdefault(f"page:{name}", []).append(bytes(page))
        snapshot.blobs.update({name: b"".join(parts) for name, parts in by_relation.items()})
        data_dir = Path(await connection.fetchval("SHOW data_directory"))
        database_oid = await connection.fetchval(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        )
        base = data_dir / "base" / str(database_oid)
        if os.access(base, os.R_OK):
            for file in base.iterdir():
                if file.is_file():
                    snapshot.blobs[f"file:{file.name}"] = file.read_bytes()
        for name in await connection.fetch("SELECT name FROM pg_ls_waldir() ORDER BY name"):
            wal = data_dir / "pg_wal" / name[0]
            if os.access(wal, os.R_OK):
                snapshot.blobs[f"wal:{name[0]}"] = wal.read_bytes()
            else:
                blob = await connection.fetchval(
                    "SELECT pg_read_binary_file($1)", f"pg_wal/{name[0]}"
                )
                snapshot.blobs[f"wal:{name[0]}"] = bytes(blob)
    finally:
        await connection.close()
    return snapshot


async def read_files(engine: AsyncEngine) -> Snapshot:
    if engine.dialect.name == "sqlite":
        return read_sqlite(engine)
    return await read_postgres(engine)


async def postgres_log_path(engine: AsyncEngine) -> Path | None:
    """The server log: the collector's current file, or Debian's per-cluster log."""
    override = os.environ.get("HARMONY_TEST_POSTGRES_LOG")
    if override:
        return Path(override)
    connection = await _connect(engine)
    try:
        current = await connection.fetchval("SELECT pg_current_logfile()")
        data_dir = await connection.fetchval("SHOW data_directory")
    finally:
        await connection.close()
    if current:
        path = Path(current)
        return path if path.is_absolute() else Path(data_dir) / path
    # /var/lib/postgresql/15/main -> /var/log/postgresql/postgresql-15-main.log
    parts = Path(data_dir).parts
    candidate = Path(f"/var/log/postgresql/postgresql-{parts[-2]}-{parts[-1]}.log")
    return candidate if os.path.exists(candidate) else None  # noqa: ASYNC240


class ServerLog:
    """What the PostgreSQL server writes to its log from now on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = path.stat().st_size

    def since_start(self) -> bytes:
        with self.path.open("rb") as log:
            log.seek(self.start)
            return log.read()
