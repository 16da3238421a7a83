"""Real headless Chromium (Debian's, through Playwright) against the companion served
from its own thread, with axe-core and html-validate from node_modules/.

Nothing here downloads a browser. Without Chromium or node_modules the browser tests
skip, except in CI (CI or HARMONY_REQUIRE_BROWSER set), where they fail the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from harmony_matrix.companion.app import make_app
from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.database import make_engine
from tests.conftest import Clock

ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = ROOT / "node_modules" / ".bin"
AXE_SCRIPT = ROOT / "node_modules" / "axe-core" / "axe.min.js"
RESULTS = ROOT / "test-results"
CHROMIUM = os.environ.get("HARMONY_CHROMIUM", "/usr/bin/chromium")
#: WCAG 2.2 AA, with GOV.UK's own best practice.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)


def _required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("HARMONY_REQUIRE_BROWSER"))


def _missing(what: str) -> None:
    if _required():
        pytest.fail(f"{what} is missing; the browser tests cannot run", pytrace=False)
    pytest.skip(f"{what} is missing")


class LiveServer:
    """The companion on 127.0.0.1 in a thread with its own event loop and database.

    ``run(work)`` runs ``await work(ctx)`` on that loop (the engine belongs to it) and
    returns the result: tests set up meetings and ballots through the same services.
    """

    def __init__(self, database: Path, clock: Clock, keys: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = clock
        self._database = database
        self._keys = keys
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.ctx: ServiceContext = self._call(self._make_context)
        self.url = ""
        self.app: web.Application = make_app(self.ctx)
        self._runner = web.AppRunner(self.app)
        self._call(self._start)

    async def _make_context(self) -> ServiceContext:
        return ServiceContext(
            engine=make_engine(f"sqlite:///{self._database}"),
            rules=Rules(),
            clock=self.clock,
            secret_key=b"browser-test-secret-key-not-for-production",
            ballot_keys_path=self._keys,
        )

    async def _start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        port = sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.ctx.public_base_url = self.url

    def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(make(), self.loop)  # type: ignore[arg-type]
        return future.result(timeout=60)

    def run(self, work: Callable[[ServiceContext], Awaitable[T]]) -> T:
        return self._call(lambda: work(self.ctx))

    def stop(self) -> None:
        async def stop() -> None:
            await self._runner.cleanup()
            await self.ctx.engine.dispose()

        self._call(stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


@pytest.fixture
def live(migrated_template: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The companion on a fresh copy of the migrated (empty) SQLite database."""
    if os.environ.get("HARMONY_TEST_DATABASE_URL"):
        pytest.skip("browser tests run in the SQLite pass; the database does not matter here")
    database = tmp_path / "harmony.db"
    shutil.copy(migrated_template, database)
    server = LiveServer(database, Clock(), tmp_path / "ballot-keys")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def playwright_session(migrated_template: str) -> Iterator[Any]:
    """Sync Playwright keeps an event loop running in the test thread while it runs,
    and asyncio (pytest-asyncio's runner, asyncio.run) refuses to work there meanwhile.
    So it lives for one module only, the database template (made with asyncio.run) is
    made first, and the browser tests run after every other test (tests/conftest.py)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium ({CHROMIUM}; apt-get install chromium)")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_session: Any) -> Iterator[Any]:
    browser = playwright_session.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context, as a member's own browser: English, desktop width."""
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def axe_violations(page: Any, tags: list[str] = AXE_TAGS) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (the rule ``target-size`` is
    enabled explicitly: it is off by default in axe 4)."""
    if not AXE_SCRIPT.is_file():
        _missing("node_modules/axe-core (npm ci)")
    # Injected through the DevTools protocol (evaluate), not a <script> tag, so the
    # page's strict CSP stays on for the test; once per document.
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {
                runOnly: {type: "tag", values: tags},
                rules: {"target-size": {enabled: true}},
            });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5),
            }));
        }""",
        tags,
    )
    return list(result)


def html_errors(pages: dict[str, str]) -> dict[str, list[str]]:
    """html-validate's messages for each rendered page (name -> HTML), in one run."""
    binary = NODE_BIN / "html-validate"
    if not binary.exists():
        _missing("node_modules/.bin/html-validate (npm ci)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="html-", dir=RESULTS))
    files = {}
    for index, (name, html) in enumerate(pages.items()):
        path = folder / f"page-{index}.html"
        path.write_text(html, encoding="utf-8")
        files[str(path)] = name
    # The report goes to a file: piped, a large JSON report is cut off at 64 KiB.
    report_file = folder / "report.json"
    run = subprocess.run(
        [
            str(binary),
            "--config",
            str(ROOT / ".htmlvalidate.json"),
            "--formatter",
            f"json={report_file}",
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if run.returncode not in (0, 1) or not report_file.is_file():
        raise RuntimeError(f"html-validate failed: {run.stderr}")
    found: dict[str, list[str]] = {name: [] for name in pages}
    for report in json.loads(report_file.read_text(encoding="utf-8") or "[]"):
        path = report["filePath"]
        name = files.get(path) or files.get(str(ROOT / path)) or path
        for message in report["messages"]:
            found.setdefault(name, []).append(
                f"{message['ruleId']}: {message['message']} (line {message.get('line')})"
            )
    shutil.rmtree(folder, ignore_errors=True)
    return found
