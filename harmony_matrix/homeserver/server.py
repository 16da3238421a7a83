"""A Synapse process on this machine: start, wait until it answers, register users, stop.

``start`` and ``stop`` are synchronous (a child process and a readiness poll, no event
loop), so a session-wide test fixture can use them; the HTTP calls that need a loop are
async and open their own aiohttp session each time, so one server serves many loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from harmony_matrix.homeserver.config import ServerConfig, write_config
from harmony_matrix.homeserver.install import ensure_synapse

VERSIONS_PATH = "/_matrix/client/versions"
REGISTER_PATH = "/_synapse/admin/v1/register"


class SynapseError(RuntimeError):
    """The homeserver did not start, or refused a request."""


@dataclass(frozen=True)
class RegisteredUser:
    user_id: str
    password: str
    access_token: str
    device_id: str
    #: The client API's base URL of the user's homeserver.
    homeserver: str

    @property
    def localpart(self) -> str:
        return self.user_id[1:].split(":", 1)[0]


class LocalSynapse:
    """One homeserver, its files in ``config.directory``.

    ``python`` is the interpreter of Synapse's venv; by default it is installed (once)
    by :func:`ensure_synapse`.
    """

    def __init__(self, config: ServerConfig, python: Path | None = None) -> None:
        # Synapse runs in its directory: a relative one would be looked for inside itself.
        self.config = replace(config, directory=config.directory.resolve())
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: RegisteredUser | None = None
        self._settings: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def server_name(self) -> str:
        return self.config.server_name

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def start(self, timeout: float = 60.0) -> None:
        """Write the config, start Synapse and return once its client API answers."""
        if self._process is not None:
            raise SynapseError("this homeserver is already running")
        python = self._python or ensure_synapse()
        self._settings = write_config(self.config, python)
        console = (self.config.directory / "console.log").open("ab")
        try:
            self._process = subprocess.Popen(
                [str(python), "-m", "synapse.app.homeserver", "-c", str(self.config.config_path)],
                cwd=self.config.directory,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C meant for the tests does not reach it first,
                # and stop() can signal it and any child it made as one group.
                start_new_session=True,
            )
        finally:
            console.close()
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            status = self._process.poll()
            if status is not None:
                raise SynapseError(
                    f"Synapse exited with status {status} while starting.\n{self.log_tail()}"
                )
            if self._answers():
                return
            if time.monotonic() > deadline:
                raise SynapseError(
                    f"Synapse did not answer on {self.url} within {timeout:.0f} s.\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + VERSIONS_PATH, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the console output and of the log, for error messages."""
        parts = []
        for path in (self.config.directory / "console.log", self.config.log_path):
            if path.exists():
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                parts.append(f"--- {path} (last {lines} lines) ---")
                parts.extend(text[-lines:])
        return "\n".join(parts)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait (reaping the child), and SIGKILL if it does not go in time."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    async def register(
        self, localpart: str, password: str | None = None, *, admin: bool = False
    ) -> RegisteredUser:
        """Create a user with the shared-secret admin API; the reply already holds an
        access token and a device, so no login is needed."""
        password = password or secrets.token_urlsafe(16)
        if self._settings is None:
            raise SynapseError("start the homeserver before registering users")
        shared_secret = self._settings["registration_shared_secret"]
        async with aiohttp.ClientSession() as session:
            nonce = (await _json(session, "GET", self.url + REGISTER_PATH))["nonce"]
            signed = "\x00".join((nonce, localpart, password, "admin" if admin else "notadmin"))
            mac = hmac.new(shared_secret.encode(), signed.encode(), hashlib.sha1)
            body = {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            }
            reply = await _json(session, "POST", self.url + REGISTER_PATH, body)
        return RegisteredUser(
            user_id=reply["user_id"],
            password=password,
            access_token=reply["access_token"],
            device_id=reply["device_id"],
            homeserver=self.url,
        )

    async def admin_token(self) -> str:
        """The access token of a server admin, registered on first use."""
        if self._admin is None:
            self._admin = await self.register(f"admin-{secrets.token_hex(4)}", admin=True)
        return self._admin.access_token


async def _json(
    session: aiohttp.ClientSession, method: str, url: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    async with session.request(method, url, json=body) as response:
        reply: dict[str, Any] = await response.json(content_type=None)
        if response.status != 200:
            raise SynapseError(f"{method} {url}: HTTP {response.status}: {reply}")
        return reply


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)
