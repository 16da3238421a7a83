"""Jinja2 pages in the reader's language, with the GOV.UK Frontend macros.

One environment per language, each with that language's gettext catalog installed (the
same catalogs as the bot's), so ``{% trans %}`` in a template and a domain error's
:class:`~harmony_matrix.i18n.Message` render alike. Autoescape is on everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from babel.numbers import format_decimal, format_percent
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from markupsafe import Markup

from harmony_matrix.companion.language import LANGUAGE_COOKIE, language_choices
from harmony_matrix.i18n import (
    Message,
    babel_locale,
    catalog,
    format_datetime,
    text_direction,
)
from harmony_matrix.resources import data_dir

#: A year: the switcher's choice outlives the visit, like any site's language setting.
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


class Renderer:
    def __init__(self, *, party_name: str, timezone: str, templates: Path | None = None) -> None:
        self.party_name = party_name
        self.timezone = timezone
        self.templates = templates or data_dir("web") / "templates"

    @functools.cache  # noqa: B019 (one renderer per app, kept for the app's life)
    def environment(self, language: str) -> Environment:
        environment = Environment(
            loader=ChoiceLoader(
                [
                    FileSystemLoader(self.templates),
                    PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
                ]
            ),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
            # Templates do not change under a running server: no stat() of every
            # template and partial on every page.
            auto_reload=False,
        )
        # babel.cfg extracts with trimmed = true: the msgids must match.
        environment.policies["ext.i18n.trimmed"] = True
        environment.install_gettext_translations(catalog(language), newstyle=True)  # type: ignore[attr-defined]
        environment.filters["message"] = lambda value: _message(value, language)
        environment.filters["datetime"] = lambda value: format_datetime(
            value, language, self.timezone
        )
        environment.filters["number"] = lambda value: format_decimal(
            value, locale=babel_locale(language)
        )
        environment.filters["percent"] = lambda value: format_percent(
            value, locale=babel_locale(language)
        )
        return environment

    def page(
        self,
        request: web.Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        language: str,
        status: int = 200,
    ) -> web.Response:
        """Render ``template`` in ``language``; the page gets ``lang``, ``dir``, the
        language switcher's choices and the party's name (``party_bdi``: isolated, for a
        sentence, as every name put into one is: see web/README.md)."""
        values = {
            "lang": language,
            "dir": text_direction(language),
            "languages": language_choices(language),
            "party_name": self.party_name,
            "party_bdi": Markup("<bdi>{}</bdi>").format(self.party_name),
            "request_path": request.path,
            # The switcher's links are GETs of this address: after a POST they would ask
            # for a page that only takes POSTs, and lose what was posted.
            "switcher_links": request.method in ("GET", "HEAD"),
            **(context or {}),
        }
        html = self.environment(language).get_template(template).render(values)
        response = web.Response(text=html, status=status, content_type="text/html")
        if "lang" in request.query and request.query["lang"] == language:
            response.set_cookie(
                LANGUAGE_COOKIE,
                language,
                max_age=LANGUAGE_COOKIE_SECONDS,
                path="/",
                samesite="Lax",
                httponly=True,
                secure=request.secure,
            )
        return response


def _message(value: object, language: str) -> str:
    if isinstance(value, Message):
        return value.render(language)
    if isinstance(value, datetime):
        raise TypeError("format datetimes with the |datetime filter")
    return str(value)
