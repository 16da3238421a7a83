"""Web companions as a deployment runs them: ``harmony run --only web``, one OS process
each, on a port of its own, configured through ``HARMONY_SECTION__KEY`` variables.

Used by ``web_scaling_bench.py``. Started through the installed ``harmony`` command next
to this interpreter (the real entry point, with its logging set-up, so every request
writes its JSON access-log line as in production), not through ``make_app`` in a
process of our own: what is measured is what an operator would start.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

HARMONY = Path(sys.executable).with_name("harmony")


@dataclass
class WebProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def casts_served(self) -> int:
        """``POST /vote/[link]/cast`` answered 200, from this process's own access log:
        evidence that this process, not another, stored those ballots."""
        served = 0
        for line in self.log.read_text().splitlines():
            try:
                message = json.loads(line).get("message", "")
            except ValueError:
                continue  # a line that is not a log record (none expected)
            if message.startswith("POST /vote/[link]/cast 200 "):
                served += 1
        return served


def environment(database_url: str, secret_key: str, keys: Path, port: int) -> dict[str, str]:
    """This process's environment, minus any Harmony setting of the caller's, plus the
    companion's: the database, the key that signed the links, no rate limit (every
    request comes from 127.0.0.1)."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not (name.startswith("HARMONY_") and "__" in name)
    }
    return inherited | {
        "HARMONY_DATABASE__URL": database_url,
        "HARMONY_SECURITY__SECRET_KEY": secret_key,
        "HARMONY_SECURITY__BALLOT_KEYS_PATH": str(keys),
        "HARMONY_WEB__HOST": "127.0.0.1",
        "HARMONY_WEB__PORT": str(port),
        "HARMONY_WEB__PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "HARMONY_WEB__BALLOT_POSTS_PER_MINUTE": "0",
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(database_url: str, secret_key: str, keys: Path, folder: Path) -> WebProcess:
    if not HARMONY.is_file():
        raise RuntimeError(f"no harmony command at {HARMONY}: run with the venv's python")
    port = free_port()
    log = folder / f"web-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(HARMONY), "run", "--only", "web"],
            env=environment(database_url, secret_key, keys, port),
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=folder,  # no harmony.toml of the caller's is read
        )
    return WebProcess(process, port, log)


async def wait_ready(web: WebProcess) -> None:
    """Until ``/readyz`` answers 200 (the schema checked, the port open); about two
    minutes at most, for a loaded machine."""
    async with aiohttp.ClientSession() as session:
        for _attempt in range(600):
            if await _ready(session, web):
                return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"harmony run --only web did not get ready:\n{web.log.read_text()}")


async def _ready(session: aiohttp.ClientSession, web: WebProcess) -> bool:
    if web.process.poll() is not None:
        raise RuntimeError(f"harmony run --only web exited:\n{web.log.read_text()}")
    try:
        async with session.get(f"{web.base}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientConnectionError:
        return False


def stop(web: WebProcess) -> int:
    """SIGTERM, as a supervisor stops it; its exit status (0: a clean stop)."""
    if web.process.poll() is None:
        web.process.send_signal(signal.SIGTERM)
    try:
        return web.process.wait(30)
    except subprocess.TimeoutExpired:
        web.process.kill()
        return web.process.wait()
