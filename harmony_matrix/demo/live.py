"""``harmony demo``: a whole party on this machine, until Ctrl-C.

A local Synapse (installed once into its own venv), the bot and the web companion in this
process, the demo party in the embedded SQLite database. Everything the demo keeps is in
``var/demo/`` under the working folder, so a second run starts from where the first
stopped and ``--reset`` (which deletes that folder and nothing else) starts afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from harmony_matrix.bot.app import Bot
from harmony_matrix.bot.session import write_private
from harmony_matrix.companion.app import make_app
from harmony_matrix.companion.security import AccessLogger, install_log_redaction
from harmony_matrix.config import Config
from harmony_matrix.demo import demo_id, demo_members, prepare_demo
from harmony_matrix.demo.member import MatrixScriptError
from harmony_matrix.demo.walkthrough import Walkthrough, WalkthroughError
from harmony_matrix.errors import InvalidInput
from harmony_matrix.homeserver import LocalSynapse, ServerConfig, SynapseError, ensure_synapse
from harmony_matrix.homeserver.config import LOOPBACK
from harmony_matrix.homeserver.install import SynapseInstallError
from harmony_matrix.i18n import Message, _
from harmony_matrix.services import rooms
from harmony_matrix.services.context import ServiceContext

#: Everything the demo keeps, relative to the working folder.
DEMO_DIR = Path("var/demo")
DEMO_DATABASE_URL = f"sqlite:///{DEMO_DIR}/harmony-demo.db"
BOT_LOCALPART = "harmony"
#: The members whose logins are printed: the General Secretary, a moderator, a member.
SHOWN = ("@ana:harmony.uk", "@bryn:harmony.uk", "@chloe:matrix.org")
#: Who the walkthrough suggests logging in as to watch it: a member it does not play.
WATCHER = "@chloe:matrix.org"
#: The ports tried first, Synapse's and aiohttp's usual ones; any free port otherwise.
PREFERRED_PORTS = {"homeserver": 8008, "web": 8080}
#: How long the first run waits for the bot's Space before saying "ready" without it.
SPACE_WAIT = 30.0

Say = Callable[[Message], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoFiles:
    root: Path = DEMO_DIR

    @property
    def synapse(self) -> Path:
        return self.root / "synapse"

    @property
    def logins(self) -> Path:
        return self.root / "logins.json"

    @property
    def ports(self) -> Path:
        return self.root / "ports.json"

    @property
    def secret_key(self) -> Path:
        return self.root / "secret_key"

    @property
    def log(self) -> Path:
        return self.root / "harmony.log"

    @property
    def walkthrough(self) -> Path:
        """The scripted members' devices (their keys read what was sent to them)."""
        return self.root / "walkthrough"


async def run_live_demo(config: Config, say: Say, *, reset: bool, walkthrough: bool = False) -> int:
    started = time.monotonic()
    files = DemoFiles()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if reset:
        say(_("Starting afresh: deleting %(path)s.", path=str(files.root)))
        shutil.rmtree(files.root, ignore_errors=True)
    files.root.mkdir(parents=True, exist_ok=True)
    _log_to_file(files.log)
    await asyncio.to_thread(_stop_leftover_synapse, files.synapse)
    ports = _ports(files.ports)
    server = await _start_synapse(files, ports["homeserver"], say)
    party = Party(config, server, files, say, stop)
    status = 0
    try:
        if not stop.is_set():
            status = await party.run(ports["web"], started, walkthrough=walkthrough)
    finally:
        say(_("Stopping Synapse (process %(pid)s)...", pid=server.pid))
        await asyncio.to_thread(server.stop)
    say(_("Everything has stopped. Run it again to carry on where you left off."))
    return status


async def _start_synapse(files: DemoFiles, port: int, say: Say) -> LocalSynapse:
    try:
        python = await asyncio.to_thread(ensure_synapse, lambda line: say(_("%(line)s", line=line)))
        server = LocalSynapse(ServerConfig(files.synapse, port), python)
        say(_("Starting Synapse on %(url)s...", url=server.url))
        await asyncio.to_thread(server.start)
    except (SynapseError, SynapseInstallError) as error:
        reason = str(error)
        raise InvalidInput(
            _("The demo's homeserver did not start: %(reason)s", reason=reason)
        ) from error
    return server


@dataclass
class Party:
    """The demo party once its homeserver is up: the bot and the web companion, and the
    walkthrough when asked for."""

    config: Config
    server: LocalSynapse
    files: DemoFiles
    say: Say
    stop: asyncio.Event

    async def run(self, web_port: int, started: float, *, walkthrough: bool) -> int:
        server, files, say, stop = self.server, self.files, self.say, self.stop
        logins = await _register(server, files.logins, say)
        bot_id = server.user_id(BOT_LOCALPART)
        config = _demo_config(self.config, files, server, logins[bot_id], web_port)
        ctx = ServiceContext.from_config(config)
        status = 0
        try:
            await prepare_demo(ctx, reset=False, server_name=server.server_name)
            bot = Bot(config, ctx)
            runner = web.AppRunner(make_app(ctx, config.web), access_log_class=AccessLogger)
            await runner.setup()
            bot_task = asyncio.create_task(bot.run(), name="bot")
            try:
                await web.TCPSite(runner, config.web.host, config.web.port).start()
                await _first(bot.ready.wait(), bot_task, stop.wait())
                if not stop.is_set() and not bot_task.done():
                    space = await _space(ctx, bot_task, stop)
                    _say_ready(say, server, files, logins, config, space, started)
                    if walkthrough:
                        status = await self._walk(ctx, config, logins, bot_task)
                    if status == 0:
                        await _first(bot_task, stop.wait())
            finally:
                say(_("Stopping the bot and the web companion..."))
                bot.stop.set()
                await runner.cleanup()
                # The bot's failure (a login refused...) is reported after everything stops.
                await bot_task
        finally:
            await ctx.engine.dispose()
        return status

    async def _walk(
        self,
        ctx: ServiceContext,
        config: Config,
        logins: dict[str, str],
        bot_task: asyncio.Task[None],
    ) -> int:
        """Play the walkthrough's Moot; 0 when it ended with a result (or was stopped by
        Ctrl-C), 1 when a step failed."""
        say, server = self.say, self.server
        watcher = demo_id(WATCHER, server.server_name)
        say(_("The walkthrough begins: scripted members hold a whole Moot."))
        say(
            _(
                "To watch, log in as %(user)s and open the Operational Working Group's room.",
                user=watcher,
            )
        )
        walk = Walkthrough(
            ctx, config.web.public_base_url, say, server.server_name, server.user_id(BOT_LOCALPART)
        )
        task = asyncio.create_task(walk.run(server.url, logins, self.files.walkthrough))
        try:
            await _first(task, bot_task, self.stop.wait())
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                if self.stop.is_set():
                    return 0
                say(_("The walkthrough stopped: the bot stopped first (its log says why)."))
                return 1
            result = task.result()
        except WalkthroughError as error:
            say(_("The walkthrough stopped: %(reason)s", reason=error.message))
            return 1
        except MatrixScriptError as error:
            reason = str(error)
            say(_("The walkthrough stopped: the homeserver said %(reason)s", reason=reason))
            return 1
        finally:
            await walk.close()
        say(_("The walkthrough is over. Meeting %(ref)s decided.", ref=result.meeting_ref))
        say(_("Result page: %(url)s", url=result.results_url))
        say(_("The party keeps running so you can look around. Stop it with Ctrl-C."))
        return 0


def _say_ready(
    say: Say,
    server: LocalSynapse,
    files: DemoFiles,
    logins: dict[str, str],
    config: Config,
    space: str | None,
    started: float,
) -> None:
    say(_("Homeserver: %(url)s (Synapse, process %(pid)s)", url=server.url, pid=server.pid))
    say(_("Log in with any Matrix client (Element Desktop: edit the homeserver to that URL):"))
    for person in SHOWN:
        user_id = demo_id(person, server.server_name)
        say(_("  %(user)s  password: %(password)s", user=user_id, password=logins[user_id]))
    say(_("  every member's login is in %(path)s", path=str(files.logins)))
    if space:
        say(_("The party's Space: %(room)s (its members are invited)", room=space))
    say(_("Web companion: %(url)s", url=config.web.public_base_url))
    say(_("Logs: %(path)s", path=str(files.log)))
    say(
        _(
            "Ready in %(seconds).1f s. Stop everything with Ctrl-C.",
            seconds=time.monotonic() - started,
        )
    )


async def _space(
    ctx: ServiceContext, bot_task: asyncio.Task[None], stop: asyncio.Event
) -> str | None:
    """The Space's room ID; on the first run the bot makes it just after its first sync,
    so wait for it a little (a later run finds it at once)."""
    deadline = time.monotonic() + SPACE_WAIT
    while not (stop.is_set() or bot_task.done()) and time.monotonic() < deadline:
        space = (await rooms.rooms_plan(ctx)).space_id
        if space:
            return space
        await _first(stop.wait(), bot_task, within=0.2)
    return None


async def _register(server: LocalSynapse, path: Path, say: Say) -> dict[str, str]:
    """Every account's password (the bot's and the members'), made once and kept in
    ``path``; accounts not yet on the homeserver are registered, the bot as its admin."""
    saved = _read_json(path)
    passwords: dict[str, str] = saved.get("passwords", {})
    registered: set[str] = set(saved.get("registered", []))
    members = csv.DictReader(io.StringIO(demo_members()))
    wanted = [BOT_LOCALPART] + [row["matrix_id"][1:].split(":", 1)[0] for row in members]
    for localpart in wanted:
        passwords.setdefault(server.user_id(localpart), secrets.token_urlsafe(9))

    def save() -> None:
        kept = {"passwords": passwords, "registered": sorted(registered)}
        write_private(path, json.dumps(kept, indent=2) + "\n")

    save()  # the passwords first: an account registered is always one we can log in to
    missing = [name for name in wanted if server.user_id(name) not in registered]
    if missing:
        say(_("Registering %(count)s accounts on the homeserver...", count=len(missing)))
    for localpart in missing:
        user_id = server.user_id(localpart)
        try:
            await server.register(localpart, passwords[user_id], admin=localpart == BOT_LOCALPART)
        except SynapseError as error:
            # Registered by a run that stopped before it could note it.
            if "M_USER_IN_USE" not in str(error):
                raise
        registered.add(user_id)
        save()
    return passwords


def _demo_config(
    config: Config, files: DemoFiles, server: LocalSynapse, bot_password: str, web_port: int
) -> Config:
    """The operator's config (party, rules) with the demo's homeserver, files and ports."""
    if not files.secret_key.exists():
        write_private(files.secret_key, secrets.token_urlsafe(32) + "\n")
    web_url = f"http://{LOOPBACK}:{web_port}"
    return replace(
        config,
        matrix=replace(
            config.matrix,
            homeserver=server.url,
            user_id=server.user_id(BOT_LOCALPART),
            password=bot_password,
            access_token="",
            store_path=str(files.root / "bot-store"),
        ),
        web=replace(config.web, host=LOOPBACK, port=web_port, public_base_url=web_url),
        security=replace(
            config.security,
            secret_key="",
            secret_key_file=str(files.secret_key),
            ballot_keys_path=str(files.root / "ballot-keys"),
        ),
    )


def _ports(path: Path) -> dict[str, int]:
    """The ports of the last run if they are still free (a client remembers the
    homeserver's URL), else the usual ones, else any free port."""
    kept: dict[str, int] = _read_json(path)
    chosen = {}
    for name, preferred in PREFERRED_PORTS.items():
        candidates = [kept.get(name), preferred, 0]
        chosen[name] = next(port for port in map(_free, candidates) if port)
    path.write_text(json.dumps(chosen) + "\n", encoding="utf-8")
    return chosen


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    read: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return read


def _free(port: int | None) -> int | None:
    """``port`` if nothing listens on it (0: any free port), else None."""
    if port is None:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers do: a port left in TIME_WAIT by the last run is free for them.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return None
        found: int = probe.getsockname()[1]
        return found


def _stop_leftover_synapse(directory: Path) -> None:
    """A Synapse of an earlier run that was killed (not stopped) still holds the demo's
    database: stop it, by the PID it wrote, if that process is still that Synapse."""
    pid_file = directory / "homeserver.pid"
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"synapse.app.homeserver" not in command or str(directory.resolve()).encode() not in command:
        return
    log.warning("Stopping Synapse process %s left over from an earlier run", pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _log_to_file(path: Path) -> None:
    """The bot's and the web's logs go to a file: the terminal keeps the demo's own lines."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[logging.FileHandler(path, encoding="utf-8")],
    )
    # nio's DEBUG would show message bodies, ballot links among them.
    logging.getLogger("nio").setLevel(logging.WARNING)
    install_log_redaction()


async def _first(*waits: object, within: float | None = None) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task, wait in zip(tasks, waits, strict=True):
            if task is not wait:
                task.cancel()
