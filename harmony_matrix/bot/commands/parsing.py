"""From a message's text to a command and its arguments (DESIGN.md section 7).

- A command starts with the prefix, then a letter: "!help". "!!!" or "! " is chat.
- Its name is one word or two ("assembly link"), in any case.
- The free text (a question, a suggestion) is the rest of the line, as typed.
- Any other argument with spaces is quoted: "..." (or “...”, „...“, «...»).
- Options are ``--name value`` wherever the usage line shows them; a ``--word`` that is
  not one of the command's options is free text where there is free text.
- A missing, extra or unknown argument is a :class:`UsageError` that says what was
  wrong; an unknown command suggests the closest one.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from harmony_matrix.bot.commands.base import Command, UsageError
from harmony_matrix.i18n import _

#: Opening quote -> closing quote. Phones turn " into “ as you type; French uses « ».
QUOTES = {'"': '"', "“": "”", "„": "“", "«": "»"}
#: What starts an option's name: "--", or the dash a phone makes of it as you type.
OPTION_STARTS = ("--", "—", "–")
#: How alike (difflib's ratio) a typed name and a command's must be to suggest it.
CLOSE_ENOUGH = 0.6


@dataclass(frozen=True)
class Token:
    value: str
    #: Where the token starts and ends in the text, quotes included.
    start: int
    end: int
    quoted: bool = False
    #: False for a quote that was never closed (the token runs to the end).
    closed: bool = True


def tokenize(text: str) -> list[Token]:
    """Words separated by white space; a word that starts with a quote runs to the
    matching closing quote, white space included."""
    tokens: list[Token] = []
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        start = index
        closing = QUOTES.get(text[index])
        if closing is not None:
            end = text.find(closing, index + 1)
            if end == -1:
                tokens.append(Token(text[index + 1 :], start, len(text), True, closed=False))
                break
            tokens.append(Token(text[index + 1 : end], start, end + 1, True))
            index = end + 1
            continue
        while index < len(text) and not text[index].isspace():
            index += 1
        tokens.append(Token(text[start:index], start, index))
    return tokens


def quote(value: str) -> str:
    """``value`` as one argument: as it is when it is one plain word, else quoted (a
    word that starts like an option or a quote is quoted too)."""
    plain = value and not any(c.isspace() for c in value) and value[0] not in QUOTES
    if plain and not value.startswith(OPTION_STARTS):
        return value
    for opening, closing in QUOTES.items():
        if closing not in value:
            return f"{opening}{value}{closing}"
    raise ValueError("a value with every kind of closing quote cannot be quoted")


def strip_reply_fallback(body: str) -> str:
    """A reply from a client older than Matrix 1.13 starts with the message replied to,
    quoted ("> <@ana:harmony.uk> ...") and followed by an empty line: drop it."""
    if not body.startswith("> <"):
        return body
    lines = body.split("\n")
    for number, line in enumerate(lines):
        if not line.startswith(">"):
            return "\n".join(lines[number + 1 :]) if line == "" else body
    return body


def command_text(prefix: str, body: str) -> str | None:
    """The text after the prefix if ``body`` is a command, else None."""
    text = strip_reply_fallback(body).lstrip()
    if not text.startswith(prefix):
        return None
    rest = text[len(prefix) :]
    return rest if rest[:1].isalpha() else None


@dataclass(frozen=True)
class Parsed:
    command: Command
    args: dict[str, str]
    options: dict[str, str]


class CommandSet:
    """The commands a dispatcher knows, by name."""

    def __init__(self, commands: Sequence[Command]) -> None:
        self.commands = tuple(commands)
        self.by_name = {command.name: command for command in self.commands}
        if len(self.by_name) != len(self.commands):
            raise ValueError("two commands have the same name")

    def family(self, word: str) -> list[Command]:
        """The commands whose name starts with ``word`` ("assembly", "assembly link")."""
        return [command for command in self.commands if command.words[0] == word]

    def closest(self, words: Sequence[str]) -> Command | None:
        """The command whose name looks most like what was typed, if one is close."""
        best: tuple[float, Command] | None = None
        for command in self.commands:
            typed = " ".join(words[: len(command.words)])
            score = difflib.SequenceMatcher(None, typed, command.name).ratio()
            if score >= CLOSE_ENOUGH and (best is None or score > best[0]):
                best = (score, command)
        return None if best is None else best[1]

    def find(self, words: Sequence[str]) -> tuple[Command, int] | None:
        """The command named by the first words (two-word names first), and how many
        words its name took; None if there is none."""
        lowered = [word.lower() for word in words[:2]]
        if len(lowered) == 2 and " ".join(lowered) in self.by_name:
            return self.by_name[" ".join(lowered)], 2
        if lowered and lowered[0] in self.by_name:
            return self.by_name[lowered[0]], 1
        return None

    def unknown(self, prefix: str, words: Sequence[str]) -> UsageError:
        """The error for a command nobody declared, suggesting the closest one."""
        lowered = [word.lower() for word in words]
        family = self.family(lowered[0]) if lowered else []
        if family:  # "!assembly lnik": the family exists, not this member of it
            typed = " ".join(lowered[:2])
            members = {command.words[1]: command for command in family if len(command.words) > 1}
            typed_member = lowered[1] if len(lowered) > 1 else ""
            close = difflib.get_close_matches(typed_member, members, 1, CLOSE_ENOUGH)
            suggestion = members[close[0]] if close else None
            if suggestion is None:
                return UsageError(
                    _("There is no command %(typed)s.", typed=f"{prefix}{typed}"), family
                )
        else:
            typed = lowered[0] if lowered else ""
            suggestion = self.closest(lowered)
            if suggestion is None:
                return UsageError(
                    _(
                        "There is no command %(typed)s. Send %(help)s for the list of commands.",
                        typed=f"{prefix}{typed}",
                        help=f"{prefix}help",
                    )
                )
        return UsageError(
            _(
                "There is no command %(typed)s. Did you mean %(command)s?",
                typed=f"{prefix}{typed}",
                command=f"{prefix}{suggestion.name}",
            ),
            [suggestion],
        )

    def parse(self, prefix: str, body: str) -> Parsed | None:
        """The command in ``body`` and its arguments; None when it is not a command.

        UsageError when it is one but not as its usage line says.
        """
        text = command_text(prefix, body)
        if text is None:
            return None
        tokens = tokenize(text)
        words = [token.value for token in tokens[:2] if not token.quoted]
        found = self.find(words)
        if found is None:
            raise self.unknown(prefix, words)
        command, taken = found
        return bind(command, text, tokens[taken:], self, prefix)


def _usage_of(command: Command, commands: CommandSet) -> list[Command]:
    """Whose usage lines to show with an error: the command's family if it has one."""
    family = commands.family(command.words[0])
    return family if len(family) > 1 else [command]


def bind(
    command: Command, text: str, tokens: list[Token], commands: CommandSet, prefix: str
) -> Parsed:
    """Match the tokens after the command's name with its parameters and options."""
    show = _usage_of(command, commands)
    options: dict[str, str] = {}
    # Each remaining token with its position, so that free text keeps the member's
    # spacing and quotes between tokens that were next to each other.
    remaining: list[tuple[int, Token]] = []
    has_rest = any(param.rest for param in command.params)
    position = 0
    while position < len(tokens):
        token = tokens[position]
        name = _option_name(token.value)
        if not token.quoted and name and name in command.options:
            if name in options:
                raise UsageError(_("%(option)s is given twice.", option=f"--{name}"), show)
            if position + 1 >= len(tokens):
                raise UsageError(_("%(option)s needs a value.", option=f"--{name}"), show)
            value = tokens[position + 1]
            _check_closed(value, show)
            options[name] = value.value
            position += 2
            continue
        if not token.quoted and name and not has_rest:
            raise UsageError(
                _(
                    "%(command)s has no option %(option)s.",
                    command=f"{prefix}{command.name}",
                    option=f"--{name}",
                ),
                show,
            )
        remaining.append((position, token))
        position += 1
    args: dict[str, str] = {}
    for param in command.params:
        if param.rest:
            free = _free_text(text, remaining)
            remaining = []
            if free:
                args[param.name] = free
            elif not param.optional:
                raise UsageError(_("%(name)s is missing.", name=param.name), show)
            continue
        if not remaining:
            if param.optional:
                continue
            raise UsageError(_("%(name)s is missing.", name=param.name), show)
        _index, token = remaining.pop(0)
        _check_closed(token, show)
        args[param.name] = token.value
    if remaining:
        extra = " ".join(text[token.start : token.end] for _index, token in remaining)
        family = commands.family(command.words[0])
        if len(command.words) == 1 and len(family) > 1:
            # "!assembly lnik": maybe a subcommand, misspelled.
            unknown = commands.unknown(prefix, [command.name, remaining[0][1].value])
            raise UsageError(unknown.message, unknown.commands or show)
        raise UsageError(_("“%(extra)s” was not expected here.", extra=extra), show)
    return Parsed(command, args, options)


def _option_name(word: str) -> str:
    """ "place" for "--place" (or "—place"); empty for a word that is no option."""
    for start in OPTION_STARTS:
        if word.startswith(start):
            return word[len(start) :].lower()
    return ""


def _check_closed(token: Token, show: Sequence[Command]) -> None:
    if not token.closed:
        raise UsageError(
            _("A quote is not closed: “%(text)s”.", text=token.value),
            show,
        )


def _free_text(text: str, remaining: list[tuple[int, Token]]) -> str:
    """The rest of the line as typed; pieces that an option separated are joined by a
    space."""
    pieces: list[str] = []
    run_start: Token | None = None
    last: tuple[int, Token] | None = None
    for index, token in remaining:
        if last is not None and index != last[0] + 1:
            assert run_start is not None
            pieces.append(text[run_start.start : last[1].end])
            run_start = None
        if run_start is None:
            run_start = token
        last = (index, token)
    if run_start is not None and last is not None:
        pieces.append(text[run_start.start : last[1].end])
    return " ".join(piece.strip() for piece in pieces).strip()
