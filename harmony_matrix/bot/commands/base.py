"""The pieces every command family shares: the event, the declaration, the request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from harmony_matrix.config import Config
from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import Message

if TYPE_CHECKING:
    from harmony_matrix.bot.replies import Reply
    from harmony_matrix.services.context import ServiceContext
    from harmony_matrix.services.people import Sender


@dataclass(frozen=True)
class CommandEvent:
    """A message that may be a command, as the sync loop hands it over."""

    event_id: str
    room_id: str
    sender: str
    #: The message's plain text (``content.body``).
    body: str
    #: The thread the message was sent in, if any: the reply goes to the same thread.
    thread_root: str | None = None


@dataclass(frozen=True)
class BotCommandSettings:
    #: What starts a command ("!" in "!help"); ``[matrix] command_prefix``.
    prefix: str = "!"

    def __post_init__(self) -> None:
        if not self.prefix.strip():
            raise ValueError("the command prefix cannot be empty")

    @classmethod
    def from_config(cls, config: Config) -> BotCommandSettings:
        return cls(prefix=config.matrix.command_prefix)


@dataclass(frozen=True)
class Param:
    """A positional argument, named as in the usage line ("SLUG", "ID")."""

    name: str
    optional: bool = False
    #: The free text: the rest of the line, spaces and quotes as the member typed them.
    rest: bool = False


@dataclass(frozen=True)
class Command:
    """A command, declared once: its usage line is its documentation.

    ``usage`` is a message with a ``%(prefix)s`` placeholder, e.g.
    ``_("%(prefix)sassembly link SLUG")``; :func:`usage_line` fills it in.
    """

    #: One word, or two for a family ("assembly link").
    name: str
    usage: Message
    #: One plain sentence: what the command does.
    summary: Message
    #: Who may use it ("anyone", "secretary").
    who: Message
    handler: Handler
    params: tuple[Param, ...] = ()
    #: The names of its ``--name value`` options, without the dashes.
    options: tuple[str, ...] = ()
    #: Only people on the register may use it (the others are asked to be added).
    needs_person: bool = True
    #: It changes something: refused to a suspended member.
    acts: bool = False

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self.name.split())


def usage_line(command: Command, prefix: str) -> Message:
    """The command's usage line with the configured prefix."""
    return replace(command.usage, params={**command.usage.params, "prefix": prefix})


class UsageError(InvalidInput):
    """The command was not written as its usage line says; the reply shows the usage
    lines of ``commands``."""

    def __init__(self, message: Message, commands: Sequence[Command] = ()) -> None:
        super().__init__(message)
        self.commands = tuple(commands)


@dataclass(frozen=True)
class Request:
    """One command to run: everything a handler may need."""

    ctx: ServiceContext
    settings: BotCommandSettings
    event: CommandEvent
    command: Command
    #: Positional arguments by their ``Param.name``; an optional one not given is absent.
    args: Mapping[str, str]
    options: Mapping[str, str]
    #: None when the sender is not on the register (only for ``needs_person=False``).
    sender: Sender | None
    #: The language the reply is rendered in unless the handler sets another.
    language: str
    #: Every command the dispatcher knows (for help and suggestions).
    commands: Sequence[Command] = field(default_factory=tuple)

    @property
    def prefix(self) -> str:
        return self.settings.prefix

    def usage(self, command: Command | None = None) -> Message:
        return usage_line(command or self.command, self.settings.prefix)

    @property
    def person(self) -> Sender:
        """The sender, for a command that ``needs_person`` (checked before it runs)."""
        assert self.sender is not None, "the dispatcher checks needs_person"
        return self.sender


Handler = Callable[[Request], Awaitable["Reply"]]
