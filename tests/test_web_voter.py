"""The walkthrough's web voter says what went wrong without the ballot link, which is a
member's secret: its errors reach the demo's terminal."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from harmony_matrix.demo.web_voter import VotingError, WebVoter

LINK = "SECRET-LINK-abc123"


async def _page(request: web.Request) -> web.Response:
    return web.Response(text="<p>A page with no form</p>", content_type="text/html")


async def test_a_page_without_the_ballot_form_is_named_without_the_link():
    app = web.Application()
    app.router.add_get("/vote/{link}", _page)
    app.router.add_get("/vote/{link}/ballot", _page)
    async with TestServer(app) as server:
        with pytest.raises(VotingError) as refused:
            await WebVoter(str(server.make_url("")).rstrip("/")).vote(LINK, {1: 5})
    assert "no ballot form" in str(refused.value)
    assert LINK not in str(refused.value) and "/vote/…/ballot" in str(refused.value)


async def test_a_companion_that_does_not_answer_is_named_without_the_link():
    with pytest.raises(VotingError) as refused:
        await WebVoter("http://127.0.0.1:1").vote(LINK, {1: 5})
    assert "did not answer" in str(refused.value)
    assert LINK not in str(refused.value) and refused.value.__cause__ is None
