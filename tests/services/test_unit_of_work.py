"""A unit of work: the bot's record of a handled command, the command's effects and its
reply are committed together, or not at all; a use case that fails inside it says so."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from harmony_matrix.errors import NotFound
from harmony_matrix.i18n import _
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import HandledEvent, MatrixState


async def _set(ctx: ServiceContext, name: str, value: str) -> None:
    """A use case: one transaction (joined to the unit of work when there is one)."""
    async with ctx.transaction() as session:
        session.add(MatrixState(name=name, value=value))


async def _failing(ctx: ServiceContext) -> None:
    async with ctx.transaction() as session:
        session.add(MatrixState(name="half", value="written"))
        await session.flush()
        raise NotFound(_("There is no such thing."))


async def _names(ctx: ServiceContext) -> set[str]:
    async with ctx.transaction() as session:
        return set(await session.scalars(select(MatrixState.name)))


async def test_a_use_case_inside_commits_with_the_unit_of_work(ctx: ServiceContext) -> None:
    async with ctx.unit_of_work() as work:
        await _set(ctx, "space", "!a")
        work.session.add(
            HandledEvent(event_id="$1", room_id="!r", handled_at=ctx.now(), outcome="x")
        )
        assert not work.failed
    assert await _names(ctx) == {"space"}
    async with ctx.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(HandledEvent)) == 1


async def test_a_refused_use_case_marks_the_unit_of_work_failed(ctx: ServiceContext) -> None:
    class RollBack(Exception):
        pass

    async def command() -> None:
        async with ctx.unit_of_work() as work:
            await _set(ctx, "before", "yes")
            with pytest.raises(NotFound):
                await _failing(ctx)
            assert work.failed
            raise RollBack  # what the bot does: nothing of the failed command is kept

    with pytest.raises(RollBack):
        await command()
    assert await _names(ctx) == set()


async def test_an_error_in_the_unit_of_work_undoes_everything(ctx: ServiceContext) -> None:
    async def dies_half_way() -> None:
        async with ctx.unit_of_work():
            await _set(ctx, "space", "!a")
            raise RuntimeError("the bot died")

    with pytest.raises(RuntimeError):
        await dies_half_way()
    assert await _names(ctx) == set()


async def test_units_of_work_do_not_nest(ctx: ServiceContext) -> None:
    async with ctx.unit_of_work():
        with pytest.raises(RuntimeError):
            async with ctx.unit_of_work():
                pass
    # and after it, use cases open their own transactions again
    await _set(ctx, "after", "yes")
    assert await _names(ctx) == {"after"}
