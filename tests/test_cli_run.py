"""`harmony run` and `harmony config check`: the production entry point refuses a bad
configuration naming the option before anything starts, serves until SIGTERM, stops
every part when one fails, and never prints a secret."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harmony_matrix.homeserver import free_port
from harmony_matrix.running import JsonLines, PartFailed, PartName, run_parts
from tests.matrix.bot_process import environment, harmony_command
from tests.test_cli_web import wait_for

PASSWORD = "matrix-password-never-shown-4711"
TOKEN = "syt_access_token_never_shown_0815"
SECRET_KEY = "security-secret-key-never-shown-2342"
SECRETS = (PASSWORD, TOKEN, SECRET_KEY)


def write_config(path: Path, database_url: str, **sections: dict[str, object]) -> Path:
    settings: dict[str, dict[str, object]] = {
        "database": {"url": database_url},
        "matrix": {
            "homeserver": "http://127.0.0.1:9",  # nothing listens: never reached here
            "user_id": "@harmony:example.org",
            "store_path": str(path.parent / "store"),
        },
        "web": {"host": "127.0.0.1", "port": free_port()},
        "security": {"secret_key": SECRET_KEY},
    }
    for section, values in sections.items():
        settings[section] = {**settings.get(section, {}), **values}
    lines: list[str] = []
    for section, values in settings.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def harmony(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        harmony_command(*args),
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment(), **(env or {})},
    )


def assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        for secret in SECRETS:
            assert secret not in output
        assert "Traceback" not in output


def test_run_only_web_serves_until_sigterm(tmp_path, database_url):
    port = free_port()
    config = write_config(tmp_path / "harmony.toml", database_url, web={"port": port})
    process = subprocess.Popen(
        harmony_command("run", "--only", "web", "--config", str(config)),
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz", process) == 200
        assert wait_for(f"http://127.0.0.1:{port}/readyz", process) == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "The web companion has stopped." in out
    assert "bot" not in out  # --only web: the bot never started
    assert_no_secret(out, err)
    # stderr is not a terminal: structured logs, one JSON object a line.
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any("GET /healthz 200" in record["message"] for record in records)


@pytest.mark.parametrize(
    ("sections", "setting"),
    [
        ({"matrix": {"user_id": "harmony"}}, "matrix.user_id"),
        (
            {"matrix": {"homeserver": "matrix.example.org", "password": PASSWORD}},
            "matrix.homeserver",
        ),
        ({"matrix": {}}, "matrix.password"),  # neither password nor token
        ({"matrix": {"password": PASSWORD, "password_file": "/x"}}, "matrix.password_file"),
        ({"matrix": {"password": PASSWORD, "no_such": "x"}}, "matrix.no_such"),
        ({"matrix": {"password": 4711}}, "matrix.password"),
        ({"web": {"public_base_url": "vote.example.org"}}, "web.public_base_url"),
    ],
)
def test_run_refuses_a_bad_config_naming_the_option(tmp_path, database_url, sections, setting):
    config = write_config(tmp_path / "harmony.toml", database_url, **sections)
    for command in (["run"], ["config", "check"]):
        result = harmony(*command, "--config", str(config))
        assert result.returncode == 2, result.stderr
        assert f"'{setting}'" in result.stderr
        assert "is starting" not in result.stdout
        assert_no_secret(result.stdout, result.stderr)
    assert "4711" not in result.stderr  # a mistyped secret is not echoed either
    assert not (tmp_path / "store").exists()  # refused before the bot's store


def test_only_web_needs_no_matrix_settings(tmp_path, database_url):
    config = write_config(tmp_path / "harmony.toml", database_url, matrix={"user_id": ""})
    assert harmony("config", "check", "--only", "web", "--config", str(config)).returncode == 0
    assert harmony("config", "check", "--config", str(config)).returncode == 2


def test_config_check_shows_where_secrets_come_from_never_them(tmp_path, database_url):
    (tmp_path / "password").write_text(f"  {PASSWORD}\n", encoding="utf-8")
    config = write_config(
        tmp_path / "harmony.toml",
        database_url,
        matrix={"password_file": str(tmp_path / "password")},
        security={"secret_key": ""},
    )
    result = harmony(
        "config",
        "check",
        "--config",
        str(config),
        env={"HARMONY_MATRIX__ACCESS_TOKEN": TOKEN, "HARMONY_SECURITY__SECRET_KEY": SECRET_KEY},
    )
    assert result.returncode == 0, result.stderr
    assert f"set (from file {tmp_path / 'password'})" in result.stdout
    assert "set (from HARMONY_MATRIX__ACCESS_TOKEN)" in result.stdout
    assert "set (from HARMONY_SECURITY__SECRET_KEY)" in result.stdout
    assert_no_secret(result.stdout, result.stderr)


def test_a_database_password_is_not_shown(tmp_path):
    config = write_config(
        tmp_path / "harmony.toml",
        f"postgresql://harmony:{PASSWORD}@db.example.org/harmony",
        matrix={"password": PASSWORD},
    )
    result = harmony("config", "check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "db.example.org" in result.stdout
    assert_no_secret(result.stdout, result.stderr)


def test_an_unreadable_secret_file_is_named(tmp_path, database_url):
    config = write_config(
        tmp_path / "harmony.toml",
        database_url,
        matrix={"access_token_file": str(tmp_path / "missing")},
    )
    result = harmony("run", "--config", str(config))
    assert result.returncode == 2
    assert "'matrix.access_token_file'" in result.stderr and "missing" in result.stderr
    assert_no_secret(result.stdout, result.stderr)


def test_a_failing_start_prints_no_secret(tmp_path, database_url):
    """The bot's homeserver does not answer: the web part is stopped too, exit 2 with the
    homeserver named, and neither the password nor the key appears anywhere."""
    config = write_config(
        tmp_path / "harmony.toml",
        database_url,
        matrix={"homeserver": f"http://127.0.0.1:{free_port()}", "password": PASSWORD},
    )
    result = harmony("run", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert "'matrix.homeserver'" in result.stderr
    assert "The web companion has stopped." in result.stdout
    assert_no_secret(result.stdout, result.stderr)


# The orchestration, with short-lived parts instead of the bot and the web server.


async def serving(stop: asyncio.Event) -> None:
    await stop.wait()


def test_stop_ends_every_part_cleanly():
    stopped: list[str] = []

    def part(name: str):
        async def run(stop: asyncio.Event) -> None:
            await stop.wait()
            await asyncio.sleep(0)  # some clean-up that takes a turn of the loop
            stopped.append(name)

        return run

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(
            run_parts({PartName.BOT: part("bot"), PartName.WEB: part("web")}, stop)
        )
        await asyncio.sleep(0)
        stop.set()
        await running

    asyncio.run(scenario())
    assert sorted(stopped) == ["bot", "web"]


@pytest.mark.parametrize("failing", list(PartName))
@pytest.mark.parametrize("error", [RuntimeError("boom"), None])
def test_a_failing_part_stops_the_other_and_is_named(failing, error):
    other_stopped = asyncio.Event()

    async def fails(stop: asyncio.Event) -> None:
        await asyncio.sleep(0)
        if error is not None:
            raise error
        # Returning on its own, unasked, is a failure too.

    async def other(stop: asyncio.Event) -> None:
        await stop.wait()
        other_stopped.set()

    parts = {name: (fails if name is failing else other) for name in PartName}

    async def scenario() -> PartFailed:
        with pytest.raises(PartFailed) as raised:
            await run_parts(parts, asyncio.Event())
        return raised.value

    failure = asyncio.run(scenario())
    assert failure.part is failing
    assert failure.cause is error
    assert other_stopped.is_set()


def test_a_part_failing_while_stopping_is_named():
    async def breaks_on_stop(stop: asyncio.Event) -> None:
        await stop.wait()
        raise RuntimeError("cleanup failed")

    async def scenario() -> None:
        stop = asyncio.Event()
        stop.set()
        await run_parts({PartName.BOT: serving, PartName.WEB: breaks_on_stop}, stop)

    with pytest.raises(PartFailed) as raised:
        asyncio.run(scenario())
    assert raised.value.part is PartName.WEB


def test_a_json_log_line_holds_the_record_and_its_traceback():
    try:
        raise ValueError("the cause")
    except ValueError:
        record = logging.LogRecord(
            "harmony_matrix.x", logging.ERROR, __file__, 1, "failed: %s", ("ü",), sys.exc_info()
        )
    entry = json.loads(JsonLines().format(record))
    assert entry["level"] == "ERROR" and entry["logger"] == "harmony_matrix.x"
    assert entry["message"] == "failed: ü"
    assert "ValueError: the cause" in entry["exception"]
    assert entry["time"].endswith("+00:00")


def test_config_check_shows_the_operations_ports(tmp_path, database_url):
    config = write_config(tmp_path / "harmony.toml", database_url, matrix={"password": PASSWORD})
    result = harmony("config", "check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert re.search(r"matrix\.health\s*: off", result.stdout), result.stdout
    assert re.search(r"web\.metrics\s*: off", result.stdout), result.stdout
    result = harmony(
        "config",
        "check",
        "--config",
        str(config),
        env={"HARMONY_MATRIX__HEALTH_PORT": "8081", "HARMONY_WEB__METRICS": "true"},
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"matrix\.health\s*: 127\.0\.0\.1:8081", result.stdout), result.stdout
    assert re.search(r"web\.metrics\s*: served at /metrics", result.stdout), result.stdout
