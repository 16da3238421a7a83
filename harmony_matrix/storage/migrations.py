"""Run Alembic migrations from the program (``harmony db upgrade``) and check versions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from alembic import command
from harmony_matrix.errors import RuleViolation
from harmony_matrix.i18n import _
from harmony_matrix.resources import data_dir


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(data_dir("alembic")))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def _run(engine: AsyncEngine, action: Callable[[Config, str], None], revision: str) -> None:
    """Run an Alembic command on a connection of our engine (Alembic's asyncio recipe)."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        action(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    state = await schema_state(engine)
    if state.current is not None and not _known(state.current):
        raise _newer(state.current)
    await _run(engine, command.upgrade, revision)


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except (ResolutionError, CommandError):
        return False


def _newer(revision: str) -> RuleViolation:
    return RuleViolation(
        _(
            "The database was migrated by a newer version of Harmony (revision "
            "%(revision)s). Upgrade Harmony before using it.",
            revision=revision,
        )
    )


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, command.downgrade, revision)


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


async def schema_state(engine: AsyncEngine) -> SchemaState:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        current = await connection.run_sync(read)
    return SchemaState(current=current, head=head_revision())


async def require_current_schema(engine: AsyncEngine) -> None:
    """Refuse to work on a database that is not migrated, or is newer than this code."""
    state = await schema_state(engine)
    if state.up_to_date:
        return
    if state.current is None:
        raise RuleViolation(_("The database is empty. Run: harmony db upgrade"))
    if not _known(state.current):
        raise _newer(state.current)
    raise RuleViolation(_("The database needs migrating. Run: harmony db upgrade"))
