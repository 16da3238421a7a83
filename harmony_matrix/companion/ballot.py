"""The ballot flow, ``/vote/<link>``: start, scores, check your answers, cast, receipt.

- ``GET /vote/{link}``: what STAR is, the question, when voting closes, "Start".
- ``GET /vote/{link}/ballot``: one radio group 0-5 per option, in this voter's order.
- ``POST /vote/{link}/ballot``: the answers. Blank everywhere or a bad value: the form
  again (400) with the error summary and every valid answer kept. Otherwise "Check your
  answers" (200), whose hidden fields carry the answers. With ``?change=N`` in the
  action (the "Change" buttons, and the language buttons of the form) it shows the form
  again with the answers kept (200), anchored at group N, and reports only bad values,
  not "nothing scored": the voter is still answering. A posted ``change`` field (a
  button named "change") does the same; it is never read as a score.
- ``POST /vote/{link}/cast``: the same checks, then the secret ballot is cast and the
  receipt shown (200, no redirect: nothing about the vote is kept to show it again).

The link is a bearer secret: it appears only in this flow's own URLs and form actions
(never in another page's link, never in a log: the access log redacts it). Scores
travel only in POST bodies. Every POST is rate-limited per client address and carries a
CSRF token scoped to the link. A link that cannot vote gets a page of its own saying
what happened and what to do, chosen by which check refused it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from harmony_matrix.companion.ballot_form import HIGHEST, LOWEST, ScoredForm, read_scores
from harmony_matrix.companion.keys import BALLOT_LIMITER, RENDERER, SECURITY, SERVICES, SETTINGS
from harmony_matrix.companion.language import chosen_language
from harmony_matrix.companion.security import client_address
from harmony_matrix.services.ballots import (
    BallotLinkError,
    BallotPaper,
    LinkProblem,
    ballot_paper,
    cast_from_answers,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: 403: this link is not yours to vote with; 409: it was; 410: the ballot is over.
STATUS_OF_PROBLEM = {
    LinkProblem.INVALID: 403,
    LinkProblem.SUSPENDED: 403,
    LinkProblem.USED: 409,
    LinkProblem.EXPIRED: 410,
    LinkProblem.CLOSED: 410,
}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/vote/{link}", start, name="vote_start")
    app.router.add_get("/vote/{link}/ballot", ballot_form, name="vote_ballot")
    app.router.add_post("/vote/{link}/ballot", answers, name="vote_answers")
    app.router.add_post("/vote/{link}/cast", cast, name="vote_cast")


def link_problems(handler: Handler) -> Handler:
    """A refused link gets its own page instead of the generic error page."""

    @functools.wraps(handler)
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BallotLinkError as error:
            return problem_page(request, error)

    return handle


@link_problems
async def start(request: web.Request) -> web.StreamResponse:
    link = request.match_info["link"]
    paper = await ballot_paper(request.app[SERVICES], link)
    return _page(request, "vote/start.html", paper, link)


@link_problems
async def ballot_form(request: web.Request) -> web.StreamResponse:
    link = request.match_info["link"]
    paper = await ballot_paper(request.app[SERVICES], link)
    return _form_page(request, paper, link, ScoredForm())


@link_problems
async def answers(request: web.Request) -> web.StreamResponse:
    link = request.match_info["link"]
    form = await _checked_post(request, link)
    paper = await ballot_paper(request.app[SERVICES], link)
    if "change" in request.query or "change" in form:
        scored = read_scores(form, paper.options, require_a_score=False)
        status = 400 if scored.errors else 200
        change = _number(request.query.get("change", form.get("change")))
        return _form_page(request, paper, link, scored, change=change, status=status)
    scored = read_scores(form, paper.options)
    if scored.errors:
        return _form_page(request, paper, link, scored, status=400)
    return _page(request, "vote/check.html", paper, link, {"answers": scored.answers})


@link_problems
async def cast(request: web.Request) -> web.StreamResponse:
    link = request.match_info["link"]
    form = await _checked_post(request, link)
    read: list[ScoredForm] = []

    def scores(paper: BallotPaper) -> dict[int, int] | None:
        read.append(read_scores(form, paper.options))
        return None if read[-1].errors else read[-1].scores(paper.options)

    # One transaction: the link checked, the answers read against its paper, the ballot
    # stored (or nothing, if the answers are refused).
    cast = await cast_from_answers(request.app[SERVICES], link, scores)
    if cast.receipt is None:
        return _form_page(request, cast.paper, link, read[-1], status=400)
    return _page(request, "vote/receipt.html", cast.paper, link, {"receipt": cast.receipt})


async def _checked_post(request: web.Request, link: str) -> MultiDictProxy[Any]:
    """The posted form, once the client is within its rate and the form is our own."""
    settings = request.app[SETTINGS]
    address = client_address(request, trust_forwarded_for=settings.trust_forwarded_for)
    if not request.app[BALLOT_LIMITER].allow(address):
        raise web.HTTPTooManyRequests()
    form = await request.post()
    token = form.get("csrf_token")
    request.app[SECURITY].check_post(request, token if isinstance(token, str) else None, link)
    return form


def _number(value: object) -> int | None:
    """The option number in ``change`` (None when empty or not a number)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 7:
        return int(value)
    return None


def _form_page(
    request: web.Request,
    paper: BallotPaper,
    link: str,
    scored: ScoredForm,
    *,
    change: int | None = None,
    status: int = 200,
) -> web.Response:
    return _page(
        request,
        "vote/form.html",
        paper,
        link,
        {
            "answers": scored.answers,
            "errors": scored.errors,
            "error_of": {error.option.number: error.problem for error in scored.errors},
            # base.html prefixes the title with "Error: " when this is set.
            "error_summary": bool(scored.errors),
            "change": change,
        },
        status=status,
    )


def _page(
    request: web.Request,
    template: str,
    paper: BallotPaper,
    link: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> web.Response:
    language = chosen_language(request, preferred=paper.language)
    values = {
        "paper": paper,
        "vote_path": vote_path(link),
        "csrf_token": request.app[SECURITY].csrf_token(scope=link),
        "lowest": LOWEST,
        "highest": HIGHEST,
        **(context or {}),
    }
    return request.app[RENDERER].page(request, template, values, language=language, status=status)


def problem_page(request: web.Request, error: BallotLinkError) -> web.Response:
    link = request.match_info["link"]
    return request.app[RENDERER].page(
        request,
        "vote/problem.html",
        {
            "problem": error.problem.value,
            "meeting_ref": error.meeting_ref,
            "vote_path": vote_path(link),
        },
        language=chosen_language(request),
        status=STATUS_OF_PROBLEM[error.problem],
    )


def vote_path(link: str) -> str:
    """This flow's own path for ``link`` (quoted: a tampered link may hold anything)."""
    return "/vote/" + quote(link, safe="")
