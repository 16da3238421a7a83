"""A command is acted on once: its record, effects and answer commit together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from harmony_matrix.bot.handling import Answer, CommandHandler, Outcome
from harmony_matrix.bot.inbox import Incoming
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import HandledEvent, MatrixState, OutboxMessage

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def incoming(event_id: str = "$cmd1", *, minutes_ago: float = 0) -> Incoming:
    return Incoming(
        event_id=event_id,
        room_id="!room",
        sender="@ann:example.org",
        body="!whoami",
        sent_at=NOW - timedelta(minutes=minutes_ago),
    )


class Recorder:
    """A dispatcher that writes through a use case (as real commands do) and counts calls."""

    def __init__(self, ctx: ServiceContext, fail: BaseException | None = None) -> None:
        self.ctx = ctx
        self.calls = 0
        self.fail = fail

    async def __call__(self, event: Incoming) -> Answer | None:
        self.calls += 1
        async with self.ctx.transaction() as session:
            session.add(MatrixState(name=f"effect-{self.calls}", value=event.event_id))
        if self.fail is not None:
            raise self.fail
        return ("en", f"answer to {event.body}", "<b>answer</b>")


def handler(ctx: ServiceContext, dispatch: Recorder, woken: list[int]) -> CommandHandler:
    return CommandHandler(
        ctx,
        dispatch,
        offline_window=timedelta(minutes=60),
        wall_clock=lambda: NOW,
        delivered=lambda message: woken.append(message.id),
    )


async def rows(ctx: ServiceContext, model: type) -> list:
    async with ctx.transaction() as session:
        return list(await session.scalars(select(model)))


async def test_a_command_is_handled_once_and_answered_once(ctx: ServiceContext) -> None:
    dispatch, woken = Recorder(ctx), []
    bot = handler(ctx, dispatch, woken)
    assert await bot.handle(incoming()) is True
    # The same event again, as after a crash before the sync position was saved.
    assert await bot.handle(incoming()) is False
    assert dispatch.calls == 1
    [reply] = await rows(ctx, OutboxMessage)
    assert (reply.destination, reply.reply_to_event_id, reply.mention) == (
        "!room",
        "$cmd1",
        "@ann:example.org",
    )
    assert reply.notice is True and reply.body == "answer to !whoami"
    assert [event.outcome for event in await rows(ctx, HandledEvent)] == [Outcome.HANDLED]
    assert woken == [reply.id]


async def test_a_crash_while_handling_leaves_no_trace_and_the_command_is_retried(
    ctx: ServiceContext,
) -> None:
    crashing = Recorder(ctx, fail=RuntimeError("the bot died"))
    with pytest.raises(RuntimeError):
        await handler(ctx, crashing, []).handle(incoming())
    assert await rows(ctx, HandledEvent) == []
    assert await rows(ctx, OutboxMessage) == []
    assert await rows(ctx, MatrixState) == []  # the command's effect was undone too
    working = Recorder(ctx)
    assert await handler(ctx, working, []).handle(incoming()) is True
    assert [state.name for state in await rows(ctx, MatrixState)] == ["effect-1"]


async def test_a_command_older_than_the_window_is_not_acted_on(ctx: ServiceContext) -> None:
    dispatch = Recorder(ctx)
    bot = handler(ctx, dispatch, [])
    assert await bot.handle(incoming("$old", minutes_ago=61)) is True
    assert dispatch.calls == 0
    [reply] = await rows(ctx, OutboxMessage)
    assert "offline" in reply.body and "send it again" in reply.body
    assert [event.outcome for event in await rows(ctx, HandledEvent)] == [Outcome.OFFLINE]
    # Just inside the window: acted on.
    assert await bot.handle(incoming("$recent", minutes_ago=59)) is True
    assert dispatch.calls == 1


async def test_an_unreadable_message_is_answered_once(ctx: ServiceContext) -> None:
    bot = handler(ctx, Recorder(ctx), [])
    await bot.unreadable("$enc", "!room", "@ann:example.org")
    await bot.unreadable("$enc", "!room", "@ann:example.org")
    [reply] = await rows(ctx, OutboxMessage)
    assert "could not read" in reply.body
    assert reply.reply_to_event_id == "$enc"


async def test_a_command_refused_part_way_keeps_nothing_but_its_answer(ctx: ServiceContext):
    """The dispatcher turns a refusal into an answer; what the command wrote before the
    refusal is rolled back, and the event is recorded with the refusal as its answer."""
    from harmony_matrix.errors import RuleViolation
    from harmony_matrix.i18n import _

    class Refusing(Recorder):
        async def __call__(self, event):
            self.calls += 1
            async with self.ctx.transaction() as session:
                session.add(MatrixState(name="half-done", value=event.event_id))
            try:
                async with self.ctx.transaction():
                    raise RuleViolation(_("There is no such thing."))
            except RuleViolation:
                return ("en", "refused", None)

    dispatch = Refusing(ctx)
    assert await handler(ctx, dispatch, []).handle(incoming()) is True
    assert dispatch.calls == 1  # not acted on a second time
    assert await rows(ctx, MatrixState) == []
    [reply] = await rows(ctx, OutboxMessage)
    assert reply.body == "refused"
    assert [event.outcome for event in await rows(ctx, HandledEvent)] == [Outcome.HANDLED]
