"""Only one bot acts at a time (bot/leadership.py), without a homeserver: two holders in
two processes, the second waits while the first lives and takes over within 10 s of a
SIGKILL; a holder whose lock connection is ended stops leading."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from harmony_matrix.bot import leadership as module
from harmony_matrix.bot.leadership import (
    ADVISORY_KEY,
    AdvisoryLock,
    FileLock,
    LeadershipLost,
    keep_leading,
    leadership_for,
)
from harmony_matrix.storage.database import normalise_url
from tests.conftest import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]

# A holder as a process of its own: says "leading" once it holds the lock, "lost" (and
# exits 3) if it loses it.
HOLDER = """
import asyncio, logging, sys
from sqlalchemy.engine import make_url
from harmony_matrix.bot.leadership import leadership_for
from harmony_matrix.storage.database import normalise_url

async def main():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    leader = leadership_for(make_url(normalise_url(sys.argv[1])))
    print("started", flush=True)
    await leader.acquire(asyncio.Event())
    print("leading", flush=True)
    await leader.lost.wait()
    print("lost", flush=True)
    sys.exit(3)

asyncio.run(main())
"""


def url_of(backend: str, tmp_path) -> str:
    if backend == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("the advisory lock needs PostgreSQL (HARMONY_TEST_DATABASE_URL)")
        return POSTGRES_URL
    return f"sqlite:///{tmp_path / 'harmony.db'}"


def leader_of(url: str):
    return leadership_for(make_url(normalise_url(url)))


class Holder:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def says(self, within: float) -> str:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), within)
        return line.decode().strip()

    async def log(self) -> str:
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode()


@pytest.fixture
async def holders() -> AsyncIterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        if holder.process.returncode is None:
            holder.process.kill()
            await holder.process.wait()


async def start_holder(holders: list[Holder], url: str) -> Holder:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    holder = Holder(process)
    holders.append(holder)
    assert await holder.says(within=30) == "started"
    return holder


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_second_waits_and_takes_over_within_10_s_of_a_sigkill(backend, tmp_path, holders):
    url = url_of(backend, tmp_path)
    first = await start_holder(holders, url)
    assert await first.says(within=10) == "leading"
    second = await start_holder(holders, url)

    # The second holds nothing while the first lives: a line within 3 s would be "leading".
    with pytest.raises(TimeoutError):
        await second.says(within=3)

    first.process.send_signal(signal.SIGKILL)
    await first.process.wait()
    began = asyncio.get_running_loop().time()
    assert await second.says(within=10) == "leading"
    assert asyncio.get_running_loop().time() - began < 10
    second.process.kill()
    await second.process.wait()
    assert (await second.log()).count("Another bot holds") == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_waiting_bot_says_so_once_and_stops_waiting_when_told(
    backend, tmp_path, monkeypatch, caplog
):
    url = url_of(backend, tmp_path)
    polls = 0
    polled_enough = asyncio.Event()
    pause = module._pause

    async def counted(stop: asyncio.Event, seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls >= 5:
            polled_enough.set()
        await pause(stop, 0.01)

    monkeypatch.setattr(module, "_pause", counted)
    first, second = leader_of(url), leader_of(url)
    stop = asyncio.Event()
    assert await first.acquire(stop)
    try:
        with caplog.at_level(logging.INFO, logger=module.__name__):
            waiting = asyncio.create_task(second.acquire(stop))
            await asyncio.wait_for(polled_enough.wait(), 10)
            stop.set()
            assert await asyncio.wait_for(waiting, 5) is False
        assert sum("Another bot holds" in r.getMessage() for r in caplog.records) == 1
    finally:
        await first.release()
        await second.release()
    # Released: the next one leads at once.
    third = leader_of(url)
    assert await third.acquire(asyncio.Event())
    await third.release()


def test_the_lock_is_the_backends_own(tmp_path):
    assert isinstance(leader_of(f"sqlite:///{tmp_path / 'h.db'}"), FileLock)
    lock = leader_of(f"sqlite:///{tmp_path / 'h.db'}")
    assert isinstance(lock, FileLock) and lock.path == tmp_path / "h.db.bot-lock"
    assert isinstance(leader_of("postgresql://u:p@db.example/harmony"), AdvisoryLock)
    assert not isinstance(leader_of("sqlite:///:memory:"), FileLock | AdvisoryLock)


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def lock_holder_pid(url: str) -> int:
    """The backend that holds the bot lock, from PostgreSQL's own view of its locks."""
    unsigned = ADVISORY_KEY & 0xFFFF_FFFF_FFFF_FFFF
    connection = await asyncpg.connect(plain(url))
    try:
        pid = await connection.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = $1 AND objid = $2 AND objsubid = 1",
            unsigned >> 32,
            unsigned & 0xFFFF_FFFF,
        )
    finally:
        await connection.close()
    assert pid is not None, "nobody holds the bot lock"
    return pid


async def terminate(url: str, pid: int) -> None:
    connection = await asyncpg.connect(plain(url))
    try:
        assert await connection.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await connection.close()


async def test_a_lost_lock_connection_stops_the_holder(tmp_path):
    url = url_of("postgresql", tmp_path)
    holder = leader_of(url)
    stop = asyncio.Event()
    assert await holder.acquire(stop)
    try:
        watching = asyncio.create_task(keep_leading(holder, stop))
        await terminate(url, await lock_holder_pid(url))
        # The bot's tasks stop on this exception (bot/app.py): it never acts unlocked.
        with pytest.raises(LeadershipLost):
            await asyncio.wait_for(watching, 5)
        assert holder.lost.is_set()
        # And the lock is free for the next bot.
        successor = leader_of(url)
        assert await asyncio.wait_for(successor.acquire(stop), 5)
        await successor.release()
    finally:
        await holder.release()


async def test_keep_leading_returns_quietly_on_stop(tmp_path):
    holder = leader_of(f"sqlite:///{tmp_path / 'h.db'}")
    stop = asyncio.Event()
    assert await holder.acquire(stop)
    stop.set()
    await asyncio.wait_for(keep_leading(holder, stop), 5)
    await holder.release()


class FreezingProxy:
    """A TCP relay to PostgreSQL that can stop relaying without closing anything: what a
    vanished host or a cut network looks like from the bot's side."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.frozen = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self.writers += [writer, up_writer]
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self.tasks.add(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            if self.frozen.is_set():
                return  # dropped, and nothing more is read: the peer hears nothing
            sink.write(data)
            await sink.drain()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            writer.close()
        self.server.close()
        await self.server.wait_closed()


async def test_a_lock_connection_gone_silent_stops_the_holder_within_seconds(tmp_path):
    url = make_url(normalise_url(url_of("postgresql", tmp_path)))
    proxy = FreezingProxy(url.host or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    holder = leadership_for(url.set(host="127.0.0.1", port=port))
    stop = asyncio.Event()
    try:
        assert await holder.acquire(stop)
        proxy.frozen.set()
        began = asyncio.get_running_loop().time()
        # No FIN, no error: only the unanswered heartbeat tells (3 s, checked every 1 s).
        await asyncio.wait_for(holder.lost.wait(), 10)
        assert asyncio.get_running_loop().time() - began < 6
    finally:
        await proxy.close()
        await holder.release()
