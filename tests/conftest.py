"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when
HARMONY_TEST_DATABASE_URL is set), a movable clock, and the demo party."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.demo import load_demo
from harmony_matrix.services import people
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage import migrations
from harmony_matrix.storage.database import make_engine, normalise_url
from harmony_matrix.storage.models import Base

POSTGRES_URL = os.environ.get("HARMONY_TEST_DATABASE_URL")
START = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.current = now

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


def backend_name() -> str:
    return "postgresql" if POSTGRES_URL else "sqlite"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: sync Playwright holds an event loop in the test thread while a
    browser module runs, which async tests cannot share (tests/browser/conftest.py)."""
    items.sort(key=lambda item: "tests/browser/" in item.nodeid.replace("\\", "/"))


def pytest_report_header() -> str:
    return f"harmony test database: {backend_name()}"


async def _migrate(url: str, *, reset: bool) -> None:
    engine = make_engine(url)
    try:
        if reset:  # whatever an earlier revision of the code left in the database
            async with engine.begin() as connection:
                await connection.execute(text("DROP SCHEMA public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate once per run: the PostgreSQL test database, or a SQLite file to copy."""
    if POSTGRES_URL:
        asyncio.run(_migrate(POSTGRES_URL, reset=True))
        return POSTGRES_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_migrate(f"sqlite:///{path}", reset=False))
    return str(path)


@pytest.fixture
async def engine(migrated_template: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database for one test."""
    if POSTGRES_URL:
        engine = make_engine(POSTGRES_URL)
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    else:
        database = tmp_path / "harmony.db"
        shutil.copy(migrated_template, database)
        engine = make_engine(f"sqlite:///{database}")
    yield engine
    await engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(engine: AsyncEngine, clock: Clock, tmp_path: Path) -> ServiceContext:
    return ServiceContext(
        engine=engine,
        rules=Rules(),
        clock=clock,
        secret_key=b"test-secret-key-not-for-production",
        ballot_keys_path=tmp_path / "ballot-keys",
    )


@pytest.fixture
async def demo(ctx: ServiceContext) -> ServiceContext:
    """The demo party: everyone recently active; Ana is General Secretary and secretary
    of the Operational Working Group and the Media Working Group."""
    await load_demo(ctx)
    return ctx


@pytest.fixture
async def empty_url(tmp_path) -> AsyncIterator[str]:
    """A brand-new empty database of the backend under test."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    url = make_url(normalise_url(POSTGRES_URL))
    name = f"harmony_migrations_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database="postgres",
    )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def database_url(engine: AsyncEngine) -> str:
    """The URL of this test's migrated, empty database, for the command line."""
    return engine.url.render_as_string(hide_password=False)


#: The demo's Welsh speakers (members.csv), whom the bot answers in Welsh.
WELSH_SPEAKERS = ("@bryn:harmony.uk", "@gwen:harmony.uk")


async def read_english(ctx: ServiceContext, *matrix_ids: str) -> None:
    """These demo people have chosen English: for a test of what a message says, not
    of the language it is in (tests/bot/test_moot_in_every_language.py does that)."""
    for matrix_id in matrix_ids or WELSH_SPEAKERS:
        await people.set_language(ctx, matrix_id, "en")
