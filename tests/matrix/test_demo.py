"""``harmony demo`` as a newcomer runs it: a process of its own in a fresh folder (its
var/ is there), a real Synapse it starts, the bot and the web companion; Ctrl-C stops
everything; the next run carries on with the same logins; ``--reset`` starts afresh."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import signal
from pathlib import Path

import aiohttp

from harmony_matrix.demo import walkthrough
from harmony_matrix.services import consensus
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.database import make_engine
from tests.matrix.bot_process import environment, harmony_command

READY = "Ready in"
START_TIMEOUT = 120
#: The walkthrough's Moot: some forty notices and their calendar files, seven ballots.
WALKTHROUGH_TIMEOUT = 600


class Run:
    def __init__(self, process: asyncio.subprocess.Process, output: str) -> None:
        self.process = process
        self.output = output

    def found(self, pattern: str) -> str:
        match = re.search(pattern, self.output)
        assert match, (pattern, self.output)
        return match.group(1)

    @property
    def homeserver(self) -> str:
        return self.found(r"Homeserver: (http://\S+)")

    @property
    def synapse_pid(self) -> int:
        return int(self.found(r"Homeserver: \S+ \(Synapse, process (\d+)\)"))

    @property
    def web(self) -> str:
        return self.found(r"Web companion: (http://\S+)")

    @property
    def logins(self) -> dict[str, str]:
        found = dict(re.findall(r"(@\S+:localhost)  password: (\S+)", self.output))
        assert len(found) == 3, self.output
        return found

    @property
    def registered(self) -> bool:
        return "Registering 41 accounts" in self.output


async def start(folder: Path, *args: str, until: str = READY, within: float = START_TIMEOUT) -> Run:
    """``harmony demo ARGS`` in ``folder``, once it has written a line starting with
    ``until``."""
    env = environment()
    # The tests' own Synapse venv, wherever the session put it.
    if "HARMONY_SYNAPSE_VENV" in os.environ:
        env["HARMONY_SYNAPSE_VENV"] = os.environ["HARMONY_SYNAPSE_VENV"]
    process = await asyncio.create_subprocess_exec(
        *harmony_command("demo", *args),
        cwd=folder,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(within):
            while not (lines and lines[-1].startswith(until)):
                line = (await process.stdout.readline()).decode()
                assert line, "".join(lines) + (await process.stderr.read()).decode()
                lines.append(line)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return Run(process, "".join(lines))


async def stop(run: Run, folder: Path) -> None:
    run.process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(run.process.communicate(), 60)
    assert run.process.returncode == 0, (out.decode(), err.decode())
    assert "Everything has stopped" in out.decode()
    assert not running(run.synapse_pid)
    assert not synapses_in(folder)


def running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def synapses_in(folder: Path) -> list[int]:
    """Synapse processes whose config is under ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"synapse.app.homeserver" in command and str(folder).encode() in command:
            found.append(int(entry.name))
    return found


async def log_in(homeserver: str, user_id: str, password: str) -> int:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{homeserver}/_matrix/client/v3/login", json=body) as response,
    ):
        return response.status


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def bot_device(folder: Path) -> str:
    credentials = folder / "var/demo/bot-store/credentials.json"
    device: str = json.loads(credentials.read_text())["device_id"]
    return device


async def test_the_demo_runs_stops_and_carries_on(synapse_python, tmp_path):
    folder = tmp_path.resolve()
    first = await start(folder)
    try:
        assert first.registered
        status, versions = await get(first.homeserver + "/_matrix/client/versions")
        assert status == 200 and "versions" in json.loads(versions)
        (user_id, password), *_others = first.logins.items()
        assert user_id == "@ana:localhost"
        assert await log_in(first.homeserver, user_id, password) == 200
        assert await log_in(first.homeserver, user_id, password + "x") == 403
        assert (await get(first.web + "/healthz"))[0] == 200
        status, page = await get(first.web + "/assemblies")
        assert status == 200 and "Operational Working Group" in page
        device = bot_device(folder)
    finally:
        await stop(first, folder)

    again = await start(folder)
    try:
        assert not again.registered  # the accounts are there; the bot keeps its device
        assert again.logins == first.logins
        assert bot_device(folder) == device
        assert await log_in(again.homeserver, user_id, password) == 200
        status, page = await get(again.web + "/assemblies")
        assert status == 200 and "Operational Working Group" in page
    finally:
        await stop(again, folder)

    fresh = await start(folder, "--reset")
    try:
        assert fresh.registered
        assert fresh.logins.keys() == first.logins.keys()
        assert fresh.logins != first.logins
        assert bot_device(folder) != device
        assert await log_in(fresh.homeserver, user_id, fresh.logins[user_id]) == 200
    finally:
        await stop(fresh, folder)


async def test_the_walkthrough_holds_a_whole_moot_and_reports_its_result(synapse_python, tmp_path):
    folder = tmp_path.resolve()
    run = await start(folder, "--walkthrough", until="Result page:", within=WALKTHROUGH_TIMEOUT)
    try:
        steps = re.findall(r"^\[(\d+)/14\]", run.output, re.MULTILINE)
        assert steps == [str(step) for step in range(1, 15)], run.output
        ref = run.found(r"Meeting (M-\d+) decided")
        results_url = run.found(r"Result page: (http://\S+)")
        assert results_url == f"{run.web}/meetings/{ref}/results"
        # What the terminal reports is what the record holds: the demo's own database,
        # read beside the running demo.
        ctx = ServiceContext(engine=make_engine(f"sqlite:///{folder}/var/demo/harmony-demo.db"))
        try:
            entries = [e for e in await consensus.list_consensus(ctx) if e.meeting_ref == ref]
            assert [entry.outcome for entry in entries] == [walkthrough.CO_OP]
            assert await consensus.verify_chain(ctx) is None
        finally:
            await ctx.engine.dispose()
        announced = run.found(r"The winning option is (.*)")
        assert walkthrough.CO_OP in announced
        status, page = await get(results_url)
        assert status == 200 and walkthrough.CO_OP in page
        # Seven ballots, each cast through the web form, counted and published.
        status, published = await get(f"{run.web}/meetings/{ref}/ballots.csv")
        assert status == 200
        rows = list(csv.DictReader(io.StringIO(published)))
        assert len(rows) == len(walkthrough.PLAYERS)
        # The terminal names who voted, never how.
        voted = [line for line in run.output.splitlines() if "has voted" in line]
        assert len(voted) == len(walkthrough.PLAYERS)
        assert not any(re.search(r"\d", line) for line in voted), voted
    finally:
        await stop(run, folder)
