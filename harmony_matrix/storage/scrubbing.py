"""Removing what a counted round leaves below SQL: old row versions, free pages, the WAL.

A closed round's sealed ballots and spent hashes are deleted in the closing transaction,
but deleting a row does not remove its bytes. This rewrites the ballot tables into fresh
storage and checks that it worked; one call is one attempt, and a failed attempt raises
``ScrubIncomplete`` saying why (the caller retries and reports: services/ballot_cleanup.py).
"""

from __future__ import annotations

import os

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from harmony_matrix.storage.models import CountedBallot, SealedBallot, SpentToken

BALLOT_TABLES = tuple(model.__tablename__ for model in (SealedBallot, SpentToken, CountedBallot))


class ScrubIncomplete(RuntimeError):
    """This attempt left something behind; the reason says what."""


async def scrub(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if engine.dialect.name == "postgresql":
            await _scrub_postgresql(autocommit)
        else:
            await _scrub_sqlite(autocommit, engine.url.database)


async def _scrub_sqlite(connection: AsyncConnection, database: str | None) -> None:
    """VACUUM rebuilds the file with no free pages (secure_delete already zeroes deleted
    cells); a TRUNCATE checkpoint then copies the WAL back and empties it. A reader
    holding an older snapshot makes the checkpoint return busy without raising, so the
    result is checked, and so is the size of the WAL file."""
    await connection.exec_driver_sql("PRAGMA busy_timeout=1000")
    try:
        await connection.exec_driver_sql("VACUUM")
        row = (await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
    except DBAPIError as error:
        raise ScrubIncomplete(f"SQLite: {error.orig}") from error
    finally:
        await connection.exec_driver_sql("PRAGMA busy_timeout=10000")
    busy, in_log, checkpointed = tuple(row)
    if busy or (in_log, checkpointed) not in ((0, 0), (-1, -1)):
        raise ScrubIncomplete(
            "SQLite: a reader still uses the write-ahead log "
            f"(checkpoint busy={busy}, log={in_log}, checkpointed={checkpointed})"
        )
    wal = f"{database}-wal"
    if database and os.path.exists(wal) and os.path.getsize(wal) > 0:  # noqa: ASYNC240
        raise ScrubIncomplete("SQLite: the write-ahead log is not empty after the checkpoint")


async def _scrub_postgresql(connection: AsyncConnection) -> None:
    """VACUUM FULL writes each ballot table into a new file and drops the old one, but
    it copies a deleted row that some open snapshot may still see, and says nothing. So
    it runs only once no snapshot, replication slot or prepared transaction older than
    this attempt remains: then no deleted ballot row can survive it."""
    marker = (await connection.exec_driver_sql("SELECT txid_current() % 4294967296")).scalar()
    older = (
        await connection.execute(
            text(
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                # An autovacuum worker running ANALYZE holds a snapshot too (seen: a
                # ballot row copied by VACUUM FULL while the test suite's writes had
                # autovacuum busy).
                "AND backend_type IN ('client backend', 'walsender', 'autovacuum worker') "
                "AND (datname = current_database() OR datname IS NULL) "
                "AND backend_xmin IS NOT NULL "
                "AND age(backend_xmin) >= age(CAST(CAST(:x AS text) AS xid)))"
                " + (SELECT count(*) FROM pg_replication_slots WHERE xmin IS NOT NULL "
                "AND age(xmin) >= age(CAST(CAST(:x AS text) AS xid)))"
                " + (SELECT count(*) FROM pg_prepared_xacts)"
            ),
            {"x": str(marker)},
        )
    ).scalar()
    if older:
        raise ScrubIncomplete(
            f"PostgreSQL: {older} transaction(s) or slot(s) may still see the deleted ballots"
        )
    try:
        await connection.exec_driver_sql("SET lock_timeout = '5s'")
        await connection.exec_driver_sql(f"VACUUM FULL {', '.join(BALLOT_TABLES)}")
    except DBAPIError as error:
        raise ScrubIncomplete(f"PostgreSQL: {error.orig}") from error
    finally:
        await connection.exec_driver_sql("RESET lock_timeout")
