"""Words the commands share: names of languages, and dates."""

from __future__ import annotations

from datetime import datetime

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, get_timezone

from harmony_matrix.i18n import Message, babel_locale, known_language, localised


def language_name(code: str) -> str:
    """A language's name in that language ("français" for fr), else its code."""
    try:
        name = Locale.parse(code, sep="-").get_display_name(code)
    except (ValueError, TypeError, UnknownLocaleError):
        return code
    return name or code


def reader_language(code: str | None, default: str) -> str:
    """The language to write to someone in: theirs if it is a language at all (one
    without a catalog falls back to English message by message), else the party's."""
    language = known_language(code) if code else None
    return language or default


def day(moment: datetime, timezone: str) -> Message:
    """A date in the reader's language, in the party's timezone ("31 January 2027")."""

    def render(language: str) -> str:
        local = moment.astimezone(get_timezone(timezone))
        return format_date(local.date(), "long", locale=babel_locale(language))

    return localised(render)
