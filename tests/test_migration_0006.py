"""Migration 0006 lowers the case of Matrix server names already in the register, and
refuses, naming them, entries that would become one person."""

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from harmony_matrix.storage import migrations
from harmony_matrix.storage.database import make_engine

INSERT = text(
    "INSERT INTO people (matrix_id, display_name, status, language, created_at) "
    "VALUES (:matrix_id, 'X', 'member', 'en', :at)"
)


async def _register(url, *matrix_ids):
    engine = make_engine(url)
    await migrations.upgrade(engine, "0003")
    async with engine.begin() as connection:
        for matrix_id in matrix_ids:
            await connection.execute(INSERT, {"matrix_id": matrix_id, "at": datetime.now(UTC)})
    return engine


async def test_server_names_are_lowered(empty_url):
    engine = await _register(empty_url, "@bob:Example.ORG", "@ana:harmony.uk:8448", "@c:X.org:1")
    try:
        await migrations.upgrade(engine)
        async with engine.connect() as connection:
            found = set((await connection.execute(text("SELECT matrix_id FROM people"))).scalars())
        assert found == {"@bob:example.org", "@ana:harmony.uk:8448", "@c:x.org:1"}
    finally:
        await engine.dispose()


async def test_two_entries_that_become_one_person_are_refused(empty_url):
    engine = await _register(empty_url, "@bob:Example.org", "@bob:example.org", "@ann:A.org")
    try:
        with pytest.raises(RuntimeError, match=re.escape("@bob:Example.org, @bob:example.org")):
            await migrations.upgrade(engine)
        async with engine.connect() as connection:
            found = set((await connection.execute(text("SELECT matrix_id FROM people"))).scalars())
        assert "@ann:A.org" in found  # nothing changed
    finally:
        await engine.dispose()
