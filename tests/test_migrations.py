"""Models and migrations never drift; migrations go up and down on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from harmony_matrix.errors import RuleViolation
from harmony_matrix.storage import migrations
from harmony_matrix.storage.database import make_engine
from harmony_matrix.storage.models import Base


def _differences(connection):
    return compare_metadata(MigrationContext.configure(connection), Base.metadata)


async def test_migrations_match_the_models(empty_url):
    engine = make_engine(empty_url)
    try:
        with pytest.raises(RuleViolation, match="db upgrade"):
            await migrations.require_current_schema(engine)
        await migrations.upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
        await migrations.require_current_schema(engine)
        await migrations.downgrade(engine, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
    finally:
        await engine.dispose()


def test_drift_would_be_detected():
    """The comparison is not blind: a model column missing from the migrations shows up."""
    from sqlalchemy import Column, Integer, MetaData, Table, create_engine

    engine = create_engine("sqlite://")
    metadata = MetaData()
    Table("people", metadata, Column("id", Integer, primary_key=True))
    metadata.create_all(engine)
    with engine.connect() as connection:
        assert _differences(connection) != []


async def test_a_database_from_a_newer_harmony_is_refused(empty_url):
    engine = make_engine(empty_url)
    try:
        await migrations.upgrade(engine)
        from sqlalchemy import text

        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(RuleViolation, match="newer version"):
            await migrations.require_current_schema(engine)
    finally:
        await engine.dispose()
