"""The bot's commands: declared once each, with the usage line that documents them.

One module per family (``info``: the commands that run no meeting); the shared pieces
are in ``base``, the parser in ``parsing`` and the dispatcher in ``dispatch``. The sync
loop calls :func:`dispatch` (or a :class:`Dispatcher` it keeps) with each message and
sends the reply it returns, if any, with :func:`harmony_matrix.bot.replies.content`.
"""

from __future__ import annotations

from harmony_matrix.bot.commands import ballots, debate, info, meetings, paper, petitions
from harmony_matrix.bot.commands.base import (
    BotCommandSettings,
    Command,
    CommandEvent,
    Handler,
    Param,
    Request,
    UsageError,
    usage_line,
)
from harmony_matrix.bot.commands.dispatch import Dispatcher
from harmony_matrix.bot.commands.parsing import CommandSet, Parsed, quote, tokenize
from harmony_matrix.bot.replies import Reply
from harmony_matrix.services.context import ServiceContext

__all__ = [
    "BotCommandSettings",
    "Command",
    "CommandEvent",
    "CommandSet",
    "Dispatcher",
    "Handler",
    "Param",
    "Parsed",
    "Request",
    "UsageError",
    "default_commands",
    "dispatch",
    "quote",
    "tokenize",
    "usage_line",
]


def default_commands() -> tuple[Command, ...]:
    """Every command the bot answers, in the order ``!help`` lists them."""
    return (
        *info.COMMANDS,
        *meetings.COMMANDS,
        *debate.COMMANDS,
        *ballots.COMMANDS,
        *paper.COMMANDS,
        *petitions.COMMANDS,
    )


async def dispatch(
    ctx: ServiceContext, settings: BotCommandSettings, event: CommandEvent
) -> Reply | None:
    """The reply to ``event`` (None when it is not a command), with every command of
    :func:`default_commands`. A long-running bot keeps one :class:`Dispatcher` instead."""
    return await Dispatcher(default_commands(), settings).dispatch(ctx, event)
