"""The bot's command counter: one count per command acted on, labelled with the declared
command and how it ended; never the member's words, a Matrix ID or a room."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from harmony_matrix.bot.app import Bot
from harmony_matrix.bot.commands import (
    BotCommandSettings,
    Command,
    Dispatcher,
    Request,
    default_commands,
)
from harmony_matrix.bot.handling import CommandHandler
from harmony_matrix.bot.inbox import Incoming
from harmony_matrix.bot.replies import Reply
from harmony_matrix.config import Config
from harmony_matrix.errors import RuleViolation
from harmony_matrix.i18n import _
from harmony_matrix.services.context import ServiceContext
from tests.services.helpers import ANA, IRIS

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
ROOM = "!secret-room:harmony.uk"
STRANGER = "@stranger:elsewhere.example"
_events = itertools.count(1)


async def explode(_request: Request) -> Reply:
    raise RuntimeError("a bug")


async def refuse_quietly(request: Request) -> Reply:
    """A command whose use case refuses while the command still answers normally."""
    try:
        async with request.ctx.transaction():
            raise RuleViolation(_("There is no such thing."))
    except RuleViolation:
        return Reply().say(_("There is no such thing."))


EXTRA = [
    Command(
        "explode", _("%(prefix)sexplode"), _("Fails."), _("anyone"), explode, needs_person=False
    ),
    Command("hush", _("%(prefix)shush"), _("Refuses."), _("anyone"), refuse_quietly),
]


@pytest.fixture
def bot(demo: ServiceContext) -> Bot:
    bot = Bot(Config(), demo)
    bot.dispatcher = Dispatcher([*default_commands(), *EXTRA], BotCommandSettings())
    bot.handler = CommandHandler(
        demo,
        bot._answer,
        offline_window=timedelta(minutes=60),
        wall_clock=lambda: NOW,
        delivered=lambda _message: None,
    )
    return bot


def command(sender: str, body: str, *, minutes_ago: float = 0) -> Incoming:
    return Incoming(
        event_id=f"$metric{next(_events)}",
        room_id=ROOM,
        sender=sender,
        body=body,
        sent_at=NOW - timedelta(minutes=minutes_ago),
    )


def counted(bot: Bot, name: str, outcome: str) -> float:
    value = bot.metrics.registry.get_sample_value(
        "harmony_bot_commands_total", {"command": name, "outcome": outcome}
    )
    return value or 0.0


async def test_each_command_is_counted_with_its_name_and_outcome(bot):
    await bot._handle(command(ANA, "!whoami"))
    await bot._handle(command(ANA, "!whoami"))
    await bot._handle(command(IRIS, "!moot call Should we?"))  # suspended
    await bot._handle(command(STRANGER, "!whoami"))  # not on the register
    await bot._handle(command(ANA, "!schedule"))  # its arguments are missing
    await bot._handle(command(ANA, "!frobnicate my-secret-words"))
    await bot._handle(command(ANA, "!explode"))
    await bot._handle(command(ANA, "!hush"))
    await bot._handle(command(ANA, "!assembly link owg", minutes_ago=61))

    assert counted(bot, "whoami", "ok") == 1 + 1
    assert counted(bot, "moot call", "refused") == 1
    assert counted(bot, "whoami", "refused") == 1
    assert counted(bot, "schedule", "usage") == 1
    assert counted(bot, "unknown", "usage") == 1
    assert counted(bot, "explode", "error") == 1
    # Its reply reads like an answer, but its transaction was rolled back.
    assert counted(bot, "hush", "refused") == 1
    assert counted(bot, "hush", "ok") == 0
    # Sent while the bot was down: not acted on, named all the same.
    assert counted(bot, "assembly link", "offline") == 1

    text = generate_latest(bot.metrics.registry).decode()
    for private in ("frobnicate", "my-secret-words", "@", ROOM, "Should we", "harmony.uk"):
        assert private not in text


async def test_a_command_found_again_after_a_restart_is_not_counted_twice(bot):
    incoming = command(ANA, "!whoami")
    await bot._handle(incoming)
    await bot._handle(incoming)  # the same event, as after a crash before saving the position
    assert counted(bot, "whoami", "ok") == 1


async def test_a_message_that_is_no_command_is_not_counted(bot):
    await bot._handle(command(ANA, "hello everyone"))
    text = generate_latest(bot.metrics.registry).decode()
    assert "harmony_bot_commands_total{" not in text
