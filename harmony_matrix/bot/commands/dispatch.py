"""From a message to the reply: parse, check who asks, run the command, catch failures.

Every command gets an answer, a refusal included: silence is a bug. A domain error is
answered with its message (and the usage line where the input was at fault); any other
failure is logged with a short error ID that the reply quotes, never a traceback.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from harmony_matrix.bot.commands.base import (
    BotCommandSettings,
    Command,
    CommandEvent,
    Request,
    UsageError,
    usage_line,
)
from harmony_matrix.bot.commands.parsing import CommandSet, command_text, tokenize
from harmony_matrix.bot.commands.wording import day, reader_language
from harmony_matrix.bot.replies import Code, Reply, rendered
from harmony_matrix.errors import HarmonyError, InvalidInput, NotFound
from harmony_matrix.i18n import Message, _, list_of
from harmony_matrix.services import people
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.people import Sender

logger = logging.getLogger(__name__)


#: The command label of a command nobody declared (its words are the member's text).
UNKNOWN_COMMAND = "unknown"


class Result(StrEnum):
    """How a command ended, for the bot's metrics."""

    OK = "ok"
    #: Not allowed, or refused by the rules (a domain error, a suspension).
    REFUSED = "refused"
    #: Not written as its usage line says, or no such command.
    USAGE = "usage"
    #: Something failed on our side: the reply gave an error ID.
    ERROR = "error"
    #: Sent while the bot was down, too long ago: not acted on (bot/handling.py).
    OFFLINE = "offline"


@dataclass(frozen=True)
class Outcome:
    #: The command's declared name ("ballot open"), or ``UNKNOWN_COMMAND``: never the
    #: member's own words, which would put what they typed into the metrics.
    command: str
    result: Result


def new_error_id() -> str:
    """Eight hex digits: short enough to read out, enough to find the log line."""
    return secrets.token_hex(4)


class Dispatcher:
    """Answers the commands it was given, with the configured prefix."""

    def __init__(self, commands: Sequence[Command], settings: BotCommandSettings) -> None:
        self.commands = CommandSet(commands)
        self.settings = settings

    def is_command(self, body: str) -> bool:
        return command_text(self.settings.prefix, body) is not None

    def command_name(self, body: str) -> str:
        """The declared name of the command in ``body``, or ``UNKNOWN_COMMAND``."""
        text = command_text(self.settings.prefix, body)
        if text is None:
            return UNKNOWN_COMMAND
        words = [token.value for token in tokenize(text)[:2] if not token.quoted]
        found = self.commands.find(words)
        return UNKNOWN_COMMAND if found is None else found[0].name

    async def dispatch(self, ctx: ServiceContext, event: CommandEvent) -> Reply | None:
        """The reply to ``event``, or None when its text is not a command."""
        answered = await self.answer(ctx, event)
        return None if answered is None else answered[0]

    async def answer(
        self, ctx: ServiceContext, event: CommandEvent
    ) -> tuple[Reply, Outcome] | None:
        """The reply to ``event`` and how the command ended, or None when its text is not
        a command.

        The reply is a reply to the event, mentions its sender, stays in its thread,
        and has its ``language`` set (the sender's, or the one a command chose).
        """
        if not self.is_command(event.body):
            return None
        reply, outcome = await self._answer(ctx, event)
        reply.in_reply_to = event.event_id
        reply.mention = event.sender
        reply.thread_root = event.thread_root
        return reply, outcome

    async def _answer(self, ctx: ServiceContext, event: CommandEvent) -> tuple[Reply, Outcome]:
        language = ctx.party.default_language
        command: Command | None = None
        try:
            sender = await people.sender(ctx, event.sender)
            if sender is not None:
                language = reader_language(sender.language, language)
            parsed = self.commands.parse(self.settings.prefix, event.body)
            assert parsed is not None, "is_command said it was one"
            command = parsed.command
            refusal = self._refusal(ctx, command, sender)
            result = Result.OK
            if refusal is not None:
                reply = refusal
                result = Result.REFUSED
            else:
                request = Request(
                    ctx=ctx,
                    settings=self.settings,
                    event=event,
                    command=command,
                    args=parsed.args,
                    options=parsed.options,
                    sender=sender,
                    language=language,
                    commands=self.commands.commands,
                )
                reply = await command.handler(request)
            reply.language = reply.language or language
            # Rendered once here, so that a message that cannot be rendered is caught
            # with the other failures rather than by whoever sends the reply.
            rendered(reply)
            return reply, self._outcome(command, result)
        except UsageError as error:
            reply = self._with_usage(Reply(language=language).say(error.message), error.commands)
            return reply, self._outcome(command, Result.USAGE)
        except HarmonyError as error:
            reply = Reply(language=language).say(error.message)
            if command is not None and isinstance(error, InvalidInput | NotFound):
                self._with_usage(reply, [command])
            return reply, self._outcome(command, Result.REFUSED)
        except Exception:
            error_id = new_error_id()
            logger.exception(
                "Command %s in room %s (event %s) failed; error ID %s",
                command.name if command else "?",
                event.room_id,
                event.event_id,
                error_id,
            )
            reply = Reply(language=language).say(
                _(
                    "Something went wrong on our side (error ID %(error_id)s). Please try "
                    "again later; if it keeps happening, give the error ID to your secretary.",
                    error_id=error_id,
                )
            )
            return reply, self._outcome(command, Result.ERROR)

    @staticmethod
    def _outcome(command: Command | None, result: Result) -> Outcome:
        return Outcome(command.name if command is not None else UNKNOWN_COMMAND, result)

    def _with_usage(self, reply: Reply, commands: Sequence[Command]) -> Reply:
        lines = [Code(usage_line(command, self.settings.prefix)) for command in commands]
        if len(lines) == 1:
            return reply.say(_("Usage:"), lines[0])
        if lines:
            reply.say(_("Usage:")).items(lines)
        return reply

    def _refusal(
        self, ctx: ServiceContext, command: Command, sender: Sender | None
    ) -> Reply | None:
        """The polite answer to someone who may not use the command at all, or None."""
        if command.needs_person and sender is None:
            return Reply().say(
                _(
                    "You are not on the party's register yet, so I cannot do this for you. "
                    "Please ask your secretary to add you."
                )
            )
        if command.acts and sender is not None and sender.suspended:
            if sender.suspended_until is None:
                return Reply().say(
                    _(
                        "Sorry, you are suspended until further notice, so you cannot do "
                        "this. You can still use %(commands)s.",
                        commands=self._reading_commands(),
                    )
                )
            return Reply().say(
                _(
                    "Sorry, you are suspended until %(date)s, so you cannot do this until "
                    "then. You can still use %(commands)s.",
                    date=day(sender.suspended_until, ctx.party.timezone),
                    commands=self._reading_commands(),
                )
            )
        return None

    def _reading_commands(self) -> Message:
        """The commands a suspended member may still use: those that change nothing."""
        prefix = self.settings.prefix
        return list_of(f"{prefix}{c.name}" for c in self.commands.commands if not c.acts)
