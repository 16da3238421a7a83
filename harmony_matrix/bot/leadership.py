"""Only one bot acts at a time.

Two bots on one database would both sync, both answer and both send the outbox. The
database already refuses to handle one command twice (services/handled_events.py); this
keeps a second bot from doing anything at all until the first is gone:

- PostgreSQL: a session-level advisory lock, held on a connection of its own for the
  bot's whole life. PostgreSQL releases it when that connection ends, which the kernel
  does for a process that dies, even by SIGKILL. Advisory locks belong to one database:
  two parties on one server do not wait for each other. (A pooler in transaction mode,
  pgbouncer's default, cannot hold a session lock: the bot must reach PostgreSQL directly
  or through a session-mode pool.)
- SQLite: an exclusive ``flock`` on ``<database>.bot-lock``, released by the kernel when
  the process dies. Only processes on the same machine share a SQLite file anyway.

A bot that does not hold the lock polls for it every second; the one that holds it
stops acting (``lost`` is set) the moment its lock connection is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL

from harmony_matrix.errors import HarmonyError
from harmony_matrix.i18n import _

log = logging.getLogger(__name__)

#: The advisory lock's key: the first 8 bytes of SHA-256("harmony-bot"), a fixed number
#: no other application is likely to pick.
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"harmony-bot").digest()[:8], "big", signed=True)
#: How often a waiting bot tries again: takeover comes at most this long after release.
POLL_SECONDS = 1.0
#: How often the holder checks its lock connection, and how long an answer may take.
HEARTBEAT_SECONDS = 1.0
HEARTBEAT_TIMEOUT_SECONDS = 3.0
#: The server's side of the lock connection. When the bot's host vanishes (power cut,
#: network gone: no FIN ever arrives) PostgreSQL only drops the session, and so the lock,
#: when TCP tells it the peer is dead: after 5 s idle, 3 probes 2 s apart (~11 s), or
#: 10 s of unacknowledged data (tcp_user_timeout), instead of the kernel's 2 hours.
#: The holder gives up sooner (a heartbeat unanswered for 3 s), so the old bot has
#: stopped before a new one can take the lock. A bot killed on a living host closes its
#: socket at once: the other takes over within POLL_SECONDS plus its login.
SERVER_SETTINGS = {
    "application_name": "harmony-bot-lock",
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}
TCP_USER_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_SECONDS = 10.0


class LeadershipLost(HarmonyError):
    """The lock went away while this bot acted: it stops rather than act beside another."""

    def __init__(self) -> None:
        super().__init__(
            _(
                "The bot lost its lock on the database and stopped, so that two bots never "
                "act at once. Start it again: it waits until no other bot is active."
            )
        )


async def keep_leading(leadership: Leadership, stop: asyncio.Event) -> None:
    """Returns when ``stop`` is set; raises LeadershipLost the moment the lock goes."""
    lost = asyncio.ensure_future(leadership.lost.wait())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({lost, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        lost.cancel()
        stopped.cancel()
    if leadership.lost.is_set():
        raise LeadershipLost


class Leadership(ABC):
    """The right to act. ``acquire`` waits for it; ``lost`` is set if it goes away."""

    def __init__(self) -> None:
        self.lost = asyncio.Event()

    @abstractmethod
    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process leads (True), or until ``stop`` is set (False)."""

    @abstractmethod
    async def release(self) -> None:
        """Let the next bot lead; safe to call when not leading."""


def leadership_for(url: URL) -> Leadership:
    """The lock that fits the bot's database (its engine's URL)."""
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(url)
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        # An in-memory database lives in one process: there is no second bot to exclude.
        return Alone()
    return FileLock(Path(f"{database}.bot-lock"))


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Alone(Leadership):
    async def acquire(self, stop: asyncio.Event) -> bool:
        return not stop.is_set()

    async def release(self) -> None:
        return None


class FileLock(Leadership):
    """``flock`` on a file next to the SQLite database, held while the process lives."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._fd: int | None = None

    async def acquire(self, stop: asyncio.Event) -> bool:
        told = False
        while not stop.is_set():
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                # Non-blocking, polled: a blocking flock could not be interrupted by stop.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if not told:
                    log.info("Another bot holds the lock %s; waiting", self.path)
                    told = True
                await _pause(stop, POLL_SECONDS)
                continue
            # For an operator wondering which process leads.
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            log.info("This bot holds the lock %s and is the active one", self.path)
            return True
        return False

    async def release(self) -> None:
        if self._fd is not None:
            # The file stays: removing it would let a waiting bot lock a file a third one
            # no longer sees.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class AdvisoryLock(Leadership):
    """``pg_try_advisory_lock`` on a connection of its own, watched by a heartbeat."""

    def __init__(self, url: URL) -> None:
        super().__init__()
        self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connection: asyncpg.Connection | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    async def _connect(self) -> asyncpg.Connection:
        connection = await asyncpg.connect(
            self.dsn, timeout=CONNECT_TIMEOUT_SECONDS, server_settings=SERVER_SETTINGS
        )
        version = connection.get_server_version()
        if version.major >= 12:
            await connection.execute(f"SET tcp_user_timeout = {TCP_USER_TIMEOUT_MS}")
        if version.major >= 14:
            # An idle_session_timeout set for the whole server would end this idle
            # session, and the bot with it.
            await connection.execute("SET idle_session_timeout = 0")
        return connection

    async def acquire(self, stop: asyncio.Event) -> bool:
        told = False
        problem = ""
        while not stop.is_set():
            try:
                if self._connection is None or self._connection.is_closed():
                    self._connection = await self._connect()
                if await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_KEY):
                    self._watch(self._connection)
                    log.info("This bot holds the database's bot lock and is the active one")
                    return True
                if not told:
                    log.info("Another bot holds the database's bot lock; waiting")
                    told = True
            except (OSError, TimeoutError, asyncpg.PostgresError) as error:
                # The database is away: keep waiting for it, saying so once per problem.
                if str(error) != problem:
                    problem = str(error)
                    log.warning("Cannot reach the database for the bot lock: %s", problem)
                await self._close()
            await _pause(stop, POLL_SECONDS)
        await self._close()
        return False

    def _watch(self, connection: asyncpg.Connection) -> None:
        # The termination listener hears a connection the server ended (a restart,
        # pg_terminate_backend); the heartbeat hears one that went silent.
        connection.add_termination_listener(self._terminated)
        self._heartbeat = asyncio.create_task(self._beat(connection), name="bot-lock")

    def _terminated(self, _connection: object) -> None:
        self._lose("the lock connection was closed")

    def _lose(self, why: str) -> None:
        if not self.lost.is_set():
            log.error("This bot lost the database's bot lock (%s): it stops acting", why)
            self.lost.set()

    async def _beat(self, connection: asyncpg.Connection) -> None:
        while not self.lost.is_set():
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await connection.fetchval("SELECT 1", timeout=HEARTBEAT_TIMEOUT_SECONDS)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                self._lose(f"{type(e).__name__}: {e}")

    async def release(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self._connection is not None and not self._connection.is_closed():
            self._connection.remove_termination_listener(self._terminated)
        # Ending the session releases the lock: no unlock statement needed.
        await self._close()

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        try:
            await asyncio.wait_for(connection.close(), HEARTBEAT_TIMEOUT_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            connection.terminate()
