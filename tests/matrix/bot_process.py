"""The bot as an operator runs it: ``harmony bot --config FILE``, a process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harmony_matrix.homeserver import RegisteredUser

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "test-secret-key-not-for-production"


def write_config(
    path: Path,
    *,
    database_url: str,
    matrix: dict[str, str],
) -> Path:
    """A harmony.toml with the given [matrix] settings (strings; TOML basic strings are
    JSON's), a database and a secret key."""
    lines = ["[database]", f"url = {json.dumps(database_url)}", "", "[matrix]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in matrix.items()]
    lines += ["", "[security]", f"secret_key = {json.dumps(SECRET_KEY)}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bot_settings(user: RegisteredUser, store: Path) -> dict[str, str]:
    return {
        "homeserver": user.homeserver,
        "user_id": user.user_id,
        "password": user.password,
        "store_path": str(store),
    }


def environment() -> dict[str, str]:
    """The test's environment without HARMONY_* settings, which would override the file."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HARMONY_")}
    return {**env, "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT)}


def harmony_command(*args: str) -> list[str]:
    """The ``harmony`` command the project installs, next to the tests' Python."""
    return [str(Path(sys.executable).with_name("harmony")), *args]


def run_harmony(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        harmony_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(),
        cwd=ROOT,
    )


def start_bot(config: Path, output: Path) -> subprocess.Popen[bytes]:
    """``harmony bot --config FILE``; its stdout and stderr appended to ``output``."""
    with output.open("ab") as stream:
        return subprocess.Popen(
            harmony_command("bot", "--config", str(config)),
            stdout=stream,
            stderr=subprocess.STDOUT,
            env=environment(),
            cwd=ROOT,
        )
