"""Engine and session factory for SQLite (the default) and PostgreSQL."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import _

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


class _NothingAtDebug(logging.Filter):
    """Drops a logger's DEBUG records, whatever level an operator configures.

    aiosqlite logs every statement with its parameters at DEBUG, and SQLAlchemy logs
    every result row at DEBUG (``hide_parameters`` hides parameters, not rows): a debug
    log would hold the voter's row next to the moment they vote.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


for _name in ("aiosqlite", "sqlalchemy.engine.Engine"):
    logging.getLogger(_name).addFilter(_NothingAtDebug())


def normalise_url(url: str) -> str:
    """Accept the plain scheme an operator is likely to write and pick the async driver."""
    for scheme in ("sqlite://", "sqlite+aiosqlite://"):
        rest = url[len(scheme) :] if url.startswith(scheme) else None
        if rest and not rest.startswith("/"):
            # sqlite://demo.db would be a "host" called demo.db: a slash is missing.
            raise InvalidInput(
                _(
                    "The database URL “%(url)s” names no file. Write %(fixed)s for a file "
                    "in the current folder, or sqlite:////full/path/harmony.db.",
                    url=url,
                    fixed=f"sqlite:///{rest}",
                )
            )
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    if not url.startswith(tuple(f"{driver}://" for driver in SUPPORTED_DRIVERS)):
        raise InvalidInput(
            _(
                "The database URL must start with sqlite:// or postgresql:// (got “%(url)s”).",
                url=url.split("://")[0] + "://",
            )
        )
    return url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL and an in-memory database."""
    url = normalise_url(url)
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix) :].split("?")[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def read_only_url(url: str) -> str:
    """The URL that opens a SQLite file read-only (a command that only reads works on a
    database it may not write, and never creates one); other URLs unchanged."""
    path = sqlite_file(url)
    if path is None:
        return url
    read_only = f"sqlite+aiosqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true"
    if not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK):
        # In WAL mode even a reader needs the -shm file, which it cannot create in a
        # folder it may not write: then nothing can change the file while we read, and
        # SQLite is told so (immutable: no locks, no -shm). A -wal file a crashed writer
        # left behind is then not read; "harmony db upgrade" by a writer folds it in.
        read_only += "&immutable=1"
    return read_only


def make_engine(url: str) -> AsyncEngine:
    url = normalise_url(url)
    read_only = "mode=ro" in url
    # hide_parameters: even with SQL logging switched on, no statement parameter (a
    # token hash, a ballot's scores) is ever written to a log.
    engine = create_async_engine(
        url, pool_pre_ping=url.startswith("postgresql"), hide_parameters=True
    )
    if url.startswith("sqlite") and read_only:
        event.listen(engine.sync_engine, "connect", _sqlite_read_only_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_deferred)
    elif url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_begin_deferred(connection: Connection) -> None:
    """A read-only connection cannot take the write lock: a plain BEGIN reads a snapshot."""
    connection.exec_driver_sql("BEGIN")


def _sqlite_read_only_pragmas(dbapi_connection: object, _record: ConnectionPoolEntry) -> None:
    # No journal_mode (a write) and no secure_delete (nothing is deleted).
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin_immediate(connection: Connection) -> None:
    """Every use case is one transaction that reads, checks the rules, then writes. The
    driver would only send BEGIN at the first write, leaving the checks outside the
    transaction (two people closing the same debate could both record consensus).
    BEGIN IMMEDIATE takes SQLite's write lock up front: use cases run one at a time,
    which a party's database easily affords. A connection in AUTOCOMMIT (VACUUM and
    checkpoints, which cannot run inside a transaction) gets no BEGIN."""
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_connection: object, _record: ConnectionPoolEntry) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers and a writer coexist,
    # and busy_timeout makes concurrent writers wait instead of failing at once.
    # Let SQLAlchemy's "begin" event issue BEGIN (see _sqlite_begin_immediate).
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Deleted rows (a closed round's ballots in their casting order) are overwritten
    # with zeros instead of lingering in free pages.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
