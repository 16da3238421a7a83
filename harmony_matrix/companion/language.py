"""Which language a page speaks: the reader's explicit choice (the switcher), then the
member's saved preference (on ballot pages), then the browser's ``Accept-Language``."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from babel import Locale

from harmony_matrix.i18n import available_languages, negotiate, normalise_language

#: The switcher's choice, remembered for the next page. Not secret, not tracking: the
#: language code only.
LANGUAGE_COOKIE = "harmony_lang"


def chosen_language(request: web.Request, preferred: str | None = None) -> str:
    for candidate in (request.query.get("lang"), request.cookies.get(LANGUAGE_COOKIE)):
        if candidate and (language := normalise_language(candidate)):
            return language
    if preferred and (language := normalise_language(preferred)):
        return language
    return negotiate(request.headers.get("Accept-Language"))


@dataclass(frozen=True)
class LanguageChoice:
    code: str
    #: The language's name in itself ("Cymraeg"), as a switcher shows it.
    name: str
    current: bool


def language_choices(current: str) -> list[LanguageChoice]:
    return [
        LanguageChoice(code, _native_name(code), code == current) for code in available_languages()
    ]


def _native_name(code: str) -> str:
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]
