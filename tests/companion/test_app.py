"""The app factory's shared behaviour: pages in the reader's language with lang and
dir, the switcher remembered, error pages for every failure (an error ID, never a
traceback), health and readiness."""

from __future__ import annotations

import logging
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from harmony_matrix.companion.app import make_app
from harmony_matrix.companion.language import LANGUAGE_COOKIE, chosen_language
from harmony_matrix.errors import InvalidInput, NotAllowed, NotFound, RuleViolation
from harmony_matrix.i18n import _, available_languages


def html_lang(html: str) -> tuple[str, str]:
    found = re.search(r'<html lang="([^"]+)" dir="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1), found.group(2)


async def test_a_missing_page_is_a_page_in_the_readers_language(client):
    response = await client.get("/no-such-page", headers={"Accept-Language": "fr-CH, en;q=0.5"})
    html = await response.text()
    assert response.status == 404
    assert html_lang(html) == ("fr", "ltr")
    assert f'<h1 class="govuk-heading-l">{_("Page not found").render("fr")}</h1>' in html


async def test_the_switcher_wins_over_the_browser_and_is_remembered(client):
    response = await client.get("/no-such-page?lang=fr", headers={"Accept-Language": "en"})
    assert html_lang(await response.text())[0] == "fr"
    cookie = response.cookies[LANGUAGE_COOKIE]
    assert cookie.value == "fr"
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    # The next page, without ?lang=, keeps the choice.
    response = await client.get("/other", headers={"Accept-Language": "en"})
    assert html_lang(await response.text())[0] == "fr"


async def test_an_unknown_language_falls_back_without_setting_anything(client):
    response = await client.get("/x?lang=xx-nope", headers={"Accept-Language": "en"})
    assert html_lang(await response.text())[0] == "en"
    assert LANGUAGE_COOKIE not in response.cookies


def test_the_members_own_preference_comes_after_the_switcher_and_before_the_browser():
    from aiohttp.test_utils import make_mocked_request

    browser_says_en = make_mocked_request("GET", "/vote/x", headers={"Accept-Language": "en"})
    assert chosen_language(browser_says_en, preferred="fr") == "fr"
    assert chosen_language(browser_says_en, preferred="zz") == "en"
    switched = make_mocked_request("GET", "/vote/x?lang=en", headers={"Accept-Language": "fr"})
    assert chosen_language(switched, preferred="fr") == "en"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput(_("Bad thing %(x)s.", x="<b>1</b>")), 400),
        (NotAllowed(_("Not you.")), 403),
        (NotFound(_("No such thing.")), 404),
        (RuleViolation(_("Not now.")), 409),
    ],
)
async def test_domain_errors_become_pages_with_their_message(ctx, error, status):
    async def failing(_request: web.Request) -> web.Response:
        raise error

    app = make_app(ctx)
    app.router.add_get("/fail", failing)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/fail")
        html = await response.text()
    assert response.status == status
    assert error.message.render("en").replace("<b>", "&lt;b&gt;").split("</b>")[0] in html
    assert "<b>1</b>" not in html  # escaped


async def test_an_internal_error_shows_an_id_that_the_log_also_has(ctx, caplog):
    async def broken(_request: web.Request) -> web.Response:
        raise ZeroDivisionError("secret detail")

    app = make_app(ctx)
    app.router.add_get("/vote/{link}/boom", broken)
    with caplog.at_level(logging.ERROR):
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/vote/THE-SECRET-LINK/boom")
            html = await response.text()
    assert response.status == 500
    assert "Traceback" not in html
    assert "secret detail" not in html
    error_id = re.search(r'class="harmony-code">([0-9A-F]{8})<', html)
    assert error_id, html
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert error_id.group(1) in logged
    assert "THE-SECRET-LINK" not in logged  # the path is redacted in the log


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200  # the test database is migrated


async def test_not_ready_on_an_empty_database(tmp_path):
    from harmony_matrix.services.context import ServiceContext
    from harmony_matrix.storage.database import make_engine

    ctx = ServiceContext(engine=make_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
    try:
        async with TestClient(TestServer(make_app(ctx))) as client:
            assert (await client.get("/readyz")).status == 503
    finally:
        await ctx.engine.dispose()


async def test_every_shipped_language_renders_the_error_page(client):
    for language in available_languages():
        response = await client.get(f"/missing?lang={language}")
        lang, direction = html_lang(await response.text())
        assert lang == language
        assert direction == ("rtl" if language in {"ar", "he", "fa", "ur"} else "ltr")
