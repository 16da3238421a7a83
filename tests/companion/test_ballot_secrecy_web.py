"""A secret vote over HTTP leaves nothing secret in any log, and a forged or unchecked
POST stores nothing.

The server runs as ``harmony web`` runs it (our AccessLogger, the log-redaction filter on
aiohttp's loggers) while every log is captured at DEBUG, SQLAlchemy's echo included; the
root handlers get no filter here, so a leak in Harmony's own code would show.
These tests go through the ballot flow (``/vote/{link}``) over HTTP.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from harmony_matrix.companion.app import make_app
from harmony_matrix.companion.security import AccessLogger, install_log_redaction
from harmony_matrix.config import WebSettings
from harmony_matrix.services import ballots
from harmony_matrix.services.context import ServiceContext
from tests.ballots.helpers import links_by_person, meeting_at_vote, path_of, token_of, voters
from tests.services.helpers import ANA, row_counts

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SCORE_FIELD = re.compile(r'name="score-([0-9]+)"')
RECEIPT = re.compile(r'id="receipt-code"[^>]*>\s*(?:<[^>]+>\s*)*([^<\s]+)')


async def _served(ctx: ServiceContext, settings: WebSettings | None = None) -> TestClient:
    """The companion served as ``harmony web`` serves it."""
    install_log_redaction(root_handlers=False)
    server = TestServer(make_app(ctx, settings))
    await server.start_server(access_log_class=AccessLogger)
    return TestClient(server)


@pytest.fixture
async def web_client(demo: ServiceContext) -> AsyncIterator[TestClient]:
    async with await _served(demo) as client:
        yield client


async def _links(ctx: ServiceContext, how_many: int = 9) -> tuple[str, list[str]]:
    """A meeting at its vote with an open ballot; each voter's link path (``/vote/...``)."""
    present = await voters(ctx, how_many)
    ref = await meeting_at_vote(ctx, present)
    await ballots.open_ballot(ctx, ANA, ref)
    links = await links_by_person(ctx)
    return ref, [links[who] for who in present]


def _vote_path(url: str) -> str:
    return "/vote/" + path_of(url)


async def _require_the_ballot_flow(client: TestClient, path: str) -> None:
    response = await client.get(path)
    assert response.status == 200, await response.text()


async def _form(client: TestClient, path: str) -> tuple[str, list[str]]:
    """The ballot form's CSRF token and its score fields."""
    response = await client.get(f"{path}/ballot")
    html = await response.text()
    assert response.status == 200, html
    token = CSRF.search(html)
    assert token, html
    fields = sorted(set(SCORE_FIELD.findall(html)), key=int)
    assert fields, html
    return token.group(1), fields


class CapturedEverything:
    """Every record of every logger at DEBUG, SQL echo on; then the text of it all."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]):
        self.caplog = caplog
        self.capfd = capfd

    def start(self, ctx: ServiceContext) -> None:
        self.caplog.set_level(logging.DEBUG)  # the root logger
        for name in ("aiohttp", "aiohttp.access", "aiohttp.server", "aiohttp.web"):
            self.caplog.set_level(logging.DEBUG, logger=name)
        self.caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
        ctx.engine.sync_engine.echo = True  # SQLAlchemy's own handler, to stdout

    def text(self, ctx: ServiceContext) -> str:
        ctx.engine.sync_engine.echo = False
        out, err = self.capfd.readouterr()
        return "\n".join([self.caplog.text, out, err])


async def test_a_whole_vote_over_http_leaves_no_link_token_or_receipt_in_any_log(
    demo, web_client, caplog, capfd
):
    ref, urls = await _links(demo)
    path = _vote_path(urls[0])
    captured = CapturedEverything(caplog, capfd)
    captured.start(demo)

    await _require_the_ballot_flow(web_client, path)
    token, fields = await _form(web_client, path)
    scores = {f"score-{number}": str(n % 6) for n, number in enumerate(fields, start=3)}
    form = {"csrf_token": token, **scores}
    check = await web_client.post(f"{path}/ballot", data=form)
    assert check.status == 200, await check.text()
    cast = await web_client.post(f"{path}/cast", data=form)
    html = await cast.text()
    assert cast.status == 200, html
    receipt = RECEIPT.search(html)
    assert receipt, html
    # The same link again is refused, and that is not logged with the link either.
    again = await web_client.post(f"{path}/cast", data=form)
    assert again.status == 409

    logged = captured.text(demo)
    assert logged.strip(), "nothing was captured: the capture itself is broken"
    assert "/vote/[link]" in logged  # the access log was on and saw the requests
    for secret in (path_of(urls[0]), token_of(urls[0]), receipt.group(1)):
        assert secret not in logged
    assert "127.0.0.1" not in logged.replace("127.0.0.1:5432", "")  # no client address

    status = await ballots.round_status(demo, ref)
    assert status.cast == 1


@pytest.mark.parametrize(
    ("what", "mangle"),
    [
        ("no token", lambda form: {k: v for k, v in form.items() if k != "csrf_token"}),
        ("a garbage token", lambda form: {**form, "csrf_token": "garbage"}),
        ("another link's token", None),  # filled in below
    ],
)
async def test_a_cast_without_a_valid_csrf_token_stores_nothing(demo, web_client, what, mangle):
    _ref, urls = await _links(demo)
    path, other = _vote_path(urls[0]), _vote_path(urls[1])
    await _require_the_ballot_flow(web_client, path)
    token, fields = await _form(web_client, path)
    form = {"csrf_token": token, **{f"score-{n}": "4" for n in fields}}
    if mangle is None:
        other_token, _fields = await _form(web_client, other)
        bad = {**form, "csrf_token": other_token}
    else:
        bad = mangle(form)
    before = await row_counts(demo)
    response = await web_client.post(f"{path}/cast", data=bad)
    assert response.status == 403, what
    assert await row_counts(demo) == before, what
    # The link still works: nothing was spent.
    response = await web_client.post(f"{path}/cast", data=form)
    assert response.status == 200, await response.text()


async def test_a_cast_from_another_site_stores_nothing(demo, web_client):
    _ref, urls = await _links(demo)
    path = _vote_path(urls[0])
    await _require_the_ballot_flow(web_client, path)
    token, fields = await _form(web_client, path)
    form = {"csrf_token": token, **{f"score-{n}": "2" for n in fields}}
    before = await row_counts(demo)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = await web_client.post(f"{path}/cast", data=form, headers=headers)
        assert response.status == 403
    assert await row_counts(demo) == before
    same_origin = str(web_client.make_url("/")).rstrip("/")
    response = await web_client.post(f"{path}/cast", data=form, headers={"Origin": same_origin})
    assert response.status == 200


async def test_ballot_posts_past_the_rate_limit_are_refused_and_store_nothing(demo):
    _ref, urls = await _links(demo)
    path = _vote_path(urls[0])
    async with await _served(demo, WebSettings(ballot_posts_per_minute=2)) as client:
        await _require_the_ballot_flow(client, path)
        token, fields = await _form(client, path)
        form = {"csrf_token": token, **{f"score-{n}": "1" for n in fields}}
        for _ in range(2):
            assert (await client.post(f"{path}/ballot", data=form)).status == 200
        before = await row_counts(demo)
        response = await client.post(f"{path}/cast", data=form)
        assert response.status == 429
        assert await row_counts(demo) == before
