"""Engine and session factory for SQLite (the default) and PostgreSQL."""

from __future__ import annotations

import logging

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


def make_engine(url: str) -> AsyncEngine:
    url = normalise_url(url)
    # hide_parameters: even with SQL logging switched on, no statement parameter (a
    # token hash, a ballot's scores) is ever written to a log.
    engine = create_async_engine(
        url, pool_pre_ping=url.startswith("postgresql"), hide_parameters=True
    )
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


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
