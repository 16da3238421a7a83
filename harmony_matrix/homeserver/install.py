"""Synapse in a venv of its own, outside the checkout, installed once per machine.

Synapse pins Twisted, cryptography, pydantic...: it is a tool the tests and the demo run,
never a dependency of the bot, so it does not share the project's venv. The venv lives in
the user's cache so that fresh clones (CI) on the same machine reuse it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SYNAPSE_VERSION = "1.163.2"

Progress = Callable[[str], None]


class SynapseInstallError(RuntimeError):
    """Synapse could not be installed (no network, pip failed...)."""


def synapse_venv() -> Path:
    """Where Synapse is (or will be) installed: $HARMONY_SYNAPSE_VENV, else the cache."""
    configured = os.environ.get("HARMONY_SYNAPSE_VENV")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "harmony" / f"synapse-{SYNAPSE_VERSION}"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _stamp(venv: Path) -> Path:
    return venv / f".harmony-installed-{SYNAPSE_VERSION}"


def ensure_synapse(progress: Progress | None = None) -> Path:
    """Install Synapse unless it is already there; return the python of its venv.

    Safe when two test runs start together: the second waits on a file lock and then
    finds the first one's stamp.
    """
    venv = synapse_venv()
    if _stamp(venv).exists():
        return venv_python(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / f".{venv.name}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _stamp(venv).exists():
                _install(venv, progress)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return venv_python(venv)


def _install(venv: Path, progress: Progress | None) -> None:
    say = progress or (lambda _message: None)
    say(f"Installing Synapse {SYNAPSE_VERSION} into {venv} (first run only, about 30 s)...")
    started = time.monotonic()
    python = venv_python(venv)
    if not python.exists():
        say("  creating its venv...")
        _run([sys.executable, "-m", "venv", str(venv)])
    say("  upgrading pip...")
    _run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    say(f"  installing matrix-synapse {SYNAPSE_VERSION} and its dependencies (the long part)...")
    _run([str(python), "-m", "pip", "install", "--quiet", f"matrix-synapse=={SYNAPSE_VERSION}"])
    _stamp(venv).touch()
    say(f"Synapse {SYNAPSE_VERSION} installed in {time.monotonic() - started:.0f} s.")


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise SynapseInstallError(
            f"{' '.join(command)} failed with exit status {result.returncode}:\n{tail}"
        )
