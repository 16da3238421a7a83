"""Lint and type-check, then the whole test suite on SQLite and on PostgreSQL.

Synapse (for the real-homeserver tests under tests/matrix/) is installed first, once per
machine. Those tests run in the SQLite pass only, unless marked database_matters (or the
caller gives their own -m). Likewise the browser tests' tools: the Node packages of
package-lock.json (`npm ci`, again whenever the lock file changes) and Debian's Chromium
(apt-get, when run as root on a machine without it). Then each translation catalog's
counts (scripts/check_catalogs.py), printed once.

PostgreSQL: HARMONY_TEST_DATABASE_URL if set; otherwise, if a server answers on
127.0.0.1:5432 (as on the project's machines), a fresh database is created for the run
and dropped afterwards. Without either, the PostgreSQL pass is skipped and says so. With
it, the two passes run at the same time (the PostgreSQL pass's output follows the
SQLite pass's). Extra arguments go to pytest.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg

from harmony_matrix.homeserver.install import SynapseInstallError, ensure_synapse

BIN = os.path.dirname(sys.executable)
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("HARMONY_CHROMIUM", "/usr/bin/chromium"))
LOCAL_SERVER = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
#: The PostgreSQL pass leaves out the real-Synapse and browser tests whose database does
#: not matter.
POSTGRES_MARKERS = "(not synapse and not browser) or database_matters"
NO_TESTS_COLLECTED = 5  # pytest.ExitCode.NO_TESTS_COLLECTED


def run(*command: str, env: dict[str, str] | None = None) -> int:
    print("$", " ".join(command), flush=True)
    return subprocess.call(command, env=env)


async def create_database() -> str | None:
    try:
        admin = await asyncpg.connect(database="postgres", timeout=3, **LOCAL_SERVER)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    name = f"harmony_test_{uuid.uuid4().hex[:8]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(database="postgres", **LOCAL_SERVER)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def install_synapse() -> int:
    """Install Synapse now, so that the first test that needs it does not wait in silence.

    CI (CI or HARMONY_REQUIRE_SYNAPSE set) fails without it; elsewhere its tests skip."""
    try:
        ensure_synapse(progress=lambda line: print(line, flush=True))
    except SynapseInstallError as error:
        if os.environ.get("CI") or os.environ.get("HARMONY_REQUIRE_SYNAPSE"):
            print(f"Synapse could not be installed: {error}", flush=True)
            return 1
        print(f"Synapse could not be installed; its tests will be skipped: {error}", flush=True)
    return 0


def browser_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("HARMONY_REQUIRE_BROWSER"))


def without_browser(problem: str) -> int:
    """CI (CI or HARMONY_REQUIRE_BROWSER set) fails; elsewhere the browser tests skip."""
    if browser_required():
        print(f"{problem}: the browser tests cannot run.", flush=True)
        return 1
    print(f"{problem}: the browser tests will be skipped.", flush=True)
    return 0


def ensure_node_tools() -> int:
    """`npm ci` when node_modules was not installed from this package-lock.json.

    The stamp inside node_modules is named after the lock file's digest, so a changed
    lock file (a pull, a branch switch) installs again, and `npm ci` removes the stamp
    with the rest of the old node_modules."""
    lock = ROOT / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    stamp = ROOT / "node_modules" / f".harmony-installed-{digest}"
    if stamp.exists():
        return 0
    npm = shutil.which("npm")
    if npm is None:
        return without_browser("npm is missing (install Node.js 20 or newer)")
    print("Installing the Node tools of package-lock.json (axe-core, html-validate, ...)")
    if run(npm, "ci", "--no-audit", "--no-fund", "--prefix", str(ROOT)):
        return without_browser("npm ci failed")
    stamp.touch()
    return 0


def ensure_chromium() -> int:
    """Debian's Chromium, installed with apt-get when we are root on a machine without it
    (a fresh CI machine). Never a browser download of Playwright's own."""
    if CHROMIUM.exists():
        return 0
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return without_browser(
            f"Chromium is missing ({CHROMIUM}; on Debian: sudo apt-get install chromium)"
        )
    print("Installing Chromium with apt-get (first run only, about 30 s)...", flush=True)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = (
        ["apt-get", "update", "-qq"],
        # Another run installing at the same time holds dpkg's lock: wait for it.
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
         "-o", "DPkg::Lock::Timeout=300", "chromium"],
    )  # fmt: skip
    for step in steps:
        print("$", " ".join(step), flush=True)
        done = subprocess.run(step, env=environment, capture_output=True, text=True)
        if done.returncode != 0:
            print((done.stdout + done.stderr)[-2000:], flush=True)
            return without_browser("Chromium could not be installed")
    if not CHROMIUM.exists():
        return without_browser(f"apt-get installed chromium, but {CHROMIUM} is not there")
    print(f"Chromium installed: {CHROMIUM}", flush=True)
    return 0


def show_catalogs() -> None:
    """Print each catalog's counts (scripts/check_catalogs.py) once, before the suite.

    A report, not a gate: tests/test_i18n.py fails on the same problems, and a missing
    translation should not stop the rest of the suite from running. Printed here rather
    than by the test (pytest hides a passing test's output, and the SQLite and
    PostgreSQL passes would print it twice)."""
    run(sys.executable, str(ROOT / "scripts" / "check_catalogs.py"))


def selects_markers(pytest_args: list[str]) -> bool:
    # "-m EXPR" and "-mEXPR"; long options start with "--".
    return any(arg.startswith("-m") for arg in pytest_args)


def main() -> int:
    pytest_args = sys.argv[1:]
    failed = (
        run(f"{BIN}/ruff", "check", ".")
        or run(f"{BIN}/ruff", "format", "--check", ".")
        or run(f"{BIN}/mypy")
    )
    if failed:
        return failed
    failed = install_synapse() or ensure_node_tools() or ensure_chromium()
    if failed:
        return failed
    show_catalogs()

    sqlite_env = {k: v for k, v in os.environ.items() if k != "HARMONY_TEST_DATABASE_URL"}
    url = os.environ.get("HARMONY_TEST_DATABASE_URL")
    created = None
    if not url:
        created = asyncio.run(create_database())
        if created:
            url = f"postgresql://postgres@127.0.0.1:5432/{created}"
    if not url:
        print("\n== Test suite on SQLite ==", flush=True)
        status = run(f"{BIN}/pytest", *pytest_args, env=sqlite_env)
        print(
            "\n== PostgreSQL pass skipped: no server on 127.0.0.1:5432 and "
            "HARMONY_TEST_DATABASE_URL is not set ==",
            flush=True,
        )
        # CI sets this so that a missing PostgreSQL fails the run instead of hiding.
        return status or (1 if os.environ.get("HARMONY_REQUIRE_POSTGRES") else 0)

    filtered = not selects_markers(pytest_args)
    pg_args = ["-m", POSTGRES_MARKERS, *pytest_args] if filtered else pytest_args
    # The two passes run side by side: the SQLite pass spends much of its time waiting
    # for the homeservers of the real-Synapse tests, the PostgreSQL pass on the database
    # server, so together they take little longer than the longer one. The PostgreSQL
    # pass's output is kept in a file and shown when it ends.
    with tempfile.TemporaryFile() as pg_output:
        print(f"\n== Test suite on PostgreSQL ({url.rsplit('@', 1)[-1]}), alongside ==", flush=True)
        postgres = subprocess.Popen(
            [f"{BIN}/pytest", *pg_args],
            env={**os.environ, "HARMONY_TEST_DATABASE_URL": url},
            stdout=pg_output,
            stderr=subprocess.STDOUT,
        )
        try:
            print("\n== Test suite on SQLite ==", flush=True)
            status = run(f"{BIN}/pytest", *pytest_args, env=sqlite_env)
            pg_status = postgres.wait()
        finally:
            if postgres.poll() is None:
                postgres.kill()
                postgres.wait()
            if created:
                asyncio.run(drop_database(created))
        print(f"\n== Test suite on PostgreSQL ({url.rsplit('@', 1)[-1]}) ==", flush=True)
        pg_output.seek(0)
        sys.stdout.buffer.write(pg_output.read())
        sys.stdout.flush()
    if filtered and pg_status == NO_TESTS_COLLECTED:
        # The caller chose only real-Synapse tests (./dev test tests/matrix): the filter
        # left nothing for PostgreSQL, which is not a failure.
        pg_status = 0
    return status or pg_status


if __name__ == "__main__":
    sys.exit(main())
