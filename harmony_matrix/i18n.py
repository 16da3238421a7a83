"""Translatable messages, catalogs, language negotiation and locale-aware formatting.

Every user-facing string is built with :func:`_` or :func:`_n`. They return a
:class:`Message` that remembers its msgid and parameters, so that the same message can be
rendered in each reader's language: a reply in the chat, a direct message through the
outbox, a web page or the command line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from io import BytesIO
from typing import Literal

from babel import Locale, UnknownLocaleError
from babel.dates import (
    format_date,
    format_time,
    get_datetime_format,
    get_timezone,
    get_timezone_name,
)
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from harmony_matrix.resources import data_dir

DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Message:
    """A user-facing message, rendered late in the reader's language.

    Parameters use Python's ``%(name)s`` placeholders so that Babel's checker can verify
    that every translation keeps them. A parameter may itself be a :class:`Message`.
    """

    msgid: str
    params: Mapping[str, object] = field(default_factory=dict)
    plural: str | None = None
    count: int | None = None

    def render(self, language: str | None = None) -> str:
        translations = catalog(language or DEFAULT_LANGUAGE)
        if self.plural is not None and self.count is not None:
            text = translations.ngettext(self.msgid, self.plural, self.count)
        else:
            text = translations.gettext(self.msgid)
        if not self.params:
            return text
        rendered = {
            key: value.render(language) if isinstance(value, Message) else value
            for key, value in self.params.items()
        }
        return text % rendered

    def __str__(self) -> str:
        return self.render(DEFAULT_LANGUAGE)


def _(msgid: str, /, **params: object) -> Message:
    """Mark ``msgid`` for translation; render it later with :meth:`Message.render`."""
    return Message(msgid, params)


def _n(singular: str, plural: str, count: int, /, **params: object) -> Message:
    """A message with plural forms; ``%(count)s`` is available to both forms."""
    return Message(singular, {"count": count, **params}, plural=plural, count=count)


def join(messages: Iterable[Message], separator: str = "\n") -> Message:
    """Several messages rendered one after the other (each translated on its own)."""
    parts = list(messages)
    keys = {f"part{index}": part for index, part in enumerate(parts)}
    template = separator.join(f"%(part{index})s" for index in range(len(parts)))
    return _Verbatim(template, keys)


@dataclass(frozen=True)
class _Verbatim(Message):
    """A layout of other messages; its template is not itself translated."""

    def render(self, language: str | None = None) -> str:
        return self.msgid % {
            key: value.render(language) if isinstance(value, Message) else value
            for key, value in self.params.items()
        }


@dataclass(frozen=True)
class _Localised(Message):
    """A value whose text depends on the reader's language (a date, a list)."""

    def render(self, language: str | None = None) -> str:
        render = self.params["render"]
        assert callable(render)
        return str(render(language or DEFAULT_LANGUAGE))


def localised(render: Callable[[str], str]) -> Message:
    """Wrap a function of the reader's language as a message parameter."""
    return _Localised("", {"render": render})


def list_of(items: Iterable[object], style: Literal["standard", "or"] = "standard") -> Message:
    """A list of messages or values, joined the way the reader's language lists things
    ("A, B, and C"); ``style="or"`` for a choice ("A, B, or C"), see :func:`any_of`."""
    values = tuple(items)

    def render(language: str) -> str:
        texts = [v.render(language) if isinstance(v, Message) else str(v) for v in values]
        return format_list(texts, style=style, locale=babel_locale(language)) if texts else ""

    return localised(render)


def any_of(items: Iterable[object]) -> Message:
    """A choice among values: "member, secretary or moderator" (not "and")."""
    return list_of(items, style="or")


#: Babel's plain "en" writes dates the American way ("January 31, 2027"); the party is
#: in the UK, and its English readers expect "31 January 2027".
_FORMATTING_LOCALE = {"en": "en_GB"}


def babel_locale(language: str) -> str:
    """The Babel locale that formats dates and numbers for readers of ``language``."""
    code = language.replace("-", "_")
    return _FORMATTING_LOCALE.get(code, code)


def verbatim(text: str) -> Message:
    """Text that is not translated (a member's own words, a question, an ID)."""
    return _Verbatim("%(text)s", {"text": text})


#: Unicode's first-strong isolate and its end (U+2068 ... U+2069): the plain-text <bdi>.
FIRST_STRONG_ISOLATE = "\u2068"
POP_DIRECTIONAL_ISOLATE = "\u2069"
#: Left-to-right, right-to-left and first-strong isolates: each is closed by U+2069.
ISOLATE_OPENERS = frozenset("\u2066\u2067\u2068")
#: What ends a paragraph for the bidirectional algorithm (class B), which also ends every
#: isolate and embedding: each paragraph of a text is isolated on its own.
PARAGRAPH_END = re.compile("(\r\n|[\n\r\x1c-\x1e\x85\u2029])")


def isolated(text: str) -> str:
    """``text`` in isolates of its own (one per paragraph), whatever bidirectional
    controls it holds.

    A member's words put into one of our sentences (a question, an option, a name) would
    otherwise run on into the words around them: Arabic in an English sentence, English
    in an Arabic one, or a right-to-left override (U+202E) typed on purpose, turns the
    sentence around in a chat client. The member's characters are all kept.
    """
    return "".join(
        piece if PARAGRAPH_END.fullmatch(piece) else _isolated_paragraph(piece)
        for piece in PARAGRAPH_END.split(text)
        if piece
    )


def _isolated_paragraph(text: str) -> str:
    """One paragraph of text in an isolate of its own.

    A pop (U+2069) with no opener before it in the text would close the wrapping
    isolate: one more opener is put in front for each. Openers still open at the end
    are closed after the text, and so are the embeddings and overrides (U+202A-U+202E)
    opened inside them, which closing an isolate ends too.
    """
    depth = 0
    unopened = 0
    for character in text:
        if character in ISOLATE_OPENERS:
            depth += 1
        elif character == POP_DIRECTIONAL_ISOLATE:
            if depth:
                depth -= 1
            else:
                unopened += 1
    # The text's own pops close the extra openers; what is left open is closed after it.
    openers = FIRST_STRONG_ISOLATE * (1 + unopened)
    closers = POP_DIRECTIONAL_ISOLATE * (1 + depth)
    return f"{openers}{text}{closers}"


def member_words(text: str) -> Message:
    """What a member wrote (a question, an option, a name, a place), to put into a
    message: shown as typed, never translated, in a bidirectional isolate of its own."""
    return verbatim(isolated(text))


def calendar_day(day: date) -> Message:
    """A calendar day in the reader's language ("31 January 2027" in English)."""
    return localised(lambda language: format_date(day, "long", locale=babel_locale(language)))


@functools.cache
def catalog(language: str) -> NullTranslations:
    """The translations for ``language``; English (the msgids) when there is no catalog.

    A compiled ``.mo`` is used when present; otherwise the ``.po`` is compiled in memory
    (a few milliseconds), so a checkout works without a build step.
    """
    if language == DEFAULT_LANGUAGE:
        return NullTranslations()
    folder = data_dir("locales") / language / "LC_MESSAGES"
    compiled = folder / "messages.mo"
    if compiled.is_file():
        with compiled.open("rb") as handle:
            return Translations(handle)
    source = folder / "messages.po"
    if not source.is_file():
        return NullTranslations()
    with source.open("rb") as handle:
        po = read_po(handle, locale=language)
    buffer = BytesIO()
    write_mo(buffer, po)
    buffer.seek(0)
    return Translations(buffer)


@functools.cache
def available_languages() -> tuple[str, ...]:
    """English plus every language with a catalog in ``locales/``."""
    found = sorted(
        path.parent.parent.name for path in data_dir("locales").glob("*/LC_MESSAGES/messages.po")
    )
    return (DEFAULT_LANGUAGE, *found)


def normalise_language(code: str) -> str | None:
    """The supported language that ``code`` ("fr", "fr-CH", "FR_ca") asks for, or None."""
    language = known_language(code)
    return language if language in available_languages() else None


def known_language(code: str) -> str | None:
    """The language part of any tag CLDR knows ("cy", "pt-BR" -> "pt"), or None.

    A member may prefer a language that has no catalog yet: messages then fall back to
    English, and switch over by themselves once the catalog arrives.
    """
    try:
        return Locale.parse(code.strip().replace("_", "-"), sep="-").language
    except (ValueError, TypeError, UnknownLocaleError):
        return None


def negotiate(accept_language: str | None) -> str:
    """The best supported language for an HTTP ``Accept-Language`` header."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _sep, parameters = item.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag))
    for _quality, _position, tag in sorted(weighted):
        language = normalise_language(tag)
        if language:
            return language
    return DEFAULT_LANGUAGE


def text_direction(language: str) -> str:
    """ "ltr" or "rtl" for a language code."""
    try:
        return Locale.parse(language, sep="-").text_direction
    except (ValueError, UnknownLocaleError):
        return "ltr"


def format_datetime(moment: datetime, language: str, timezone: str) -> str:
    """A date and time written the way readers of ``language`` expect, in the party's zone,
    without seconds and with the zone's name, since members on other homeservers may live
    elsewhere ("Friday, 20 November 2026, 19:00 (Greenwich Mean Time)")."""
    locale = babel_locale(language)
    local = moment.astimezone(get_timezone(timezone))
    time = format_time(local, "short", locale=locale)
    zone = get_timezone_name(local, "long", locale=locale)
    return (
        str(get_datetime_format("full", locale=locale))
        .replace("'", "")
        .replace("{0}", f"{time} ({zone})")
        .replace("{1}", format_date(local, "full", locale=locale))
    )
