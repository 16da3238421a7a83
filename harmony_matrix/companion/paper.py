"""A secretary's pages for the paper ballots of an in-person meeting.

- ``GET /paper/<link>``: what the one-time link from ``!ballot paper`` is for, and a
  button; a link previewer that fetches the page spends nothing.
- ``POST /paper/<link>``: uses the link up (services/paper_sign_in.py), sets a session
  cookie and goes on to ``GET /paper``.
- ``GET /paper``: the vote (held on paper from now: an online ballot nobody has used is
  withdrawn) and the form: one line of scores per paper, or a CSV file.
- ``POST /paper/check``: the ballots as they would be counted; nothing stored.
- ``POST /paper/change``: back to the form with the lines kept.
- ``POST /paper/count``: counts them (services/paper_votes.py) and shows the outcome.

The session cookie carries the person, the meeting and an expiry, signed with the secret
key; every page checks again that the person is still an organiser of the meeting.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from itsdangerous import BadSignature, URLSafeSerializer
from multidict import MultiDictProxy

from harmony_matrix.companion.keys import RENDERER, SECURITY, SERVICES, SETTINGS
from harmony_matrix.companion.language import chosen_language
from harmony_matrix.errors import InvalidInput, NotAllowed
from harmony_matrix.i18n import Message, _, _n
from harmony_matrix.services import paper_sign_in, paper_votes
from harmony_matrix.services.paper_sign_in import PaperSession
from harmony_matrix.services.paper_votes import PaperVotePlan

SESSION_COOKIE = "harmony_paper"
COOKIE_PATH = "/paper"
#: Over https the cookie is a ``__Host-`` cookie: Secure, for this host only, Path=/, so a
#: sibling subdomain cannot plant one of its own (a browser refuses the prefix otherwise).
HOST_SESSION_COOKIE = "__Host-harmony_paper"
#: A sign-in link: ``ID.TOKEN.EXPIRES.SIGNATURE`` (never "check", "count" or "change").
LINK_PATTERN = r"[0-9]+\.[A-Za-z0-9_-]+\.[0-9]+\.[A-Za-z0-9_-]+"
#: A score on a line: separated by commas, or by spaces when there is no comma.
SCORE = re.compile(r"[0-5]")
#: More mistakes than this are not listed one by one.
MOST_ERRORS = 10
#: The textarea's field name, and the file's.
LINES_FIELD = "ballots"
FILE_FIELD = "file"
#: The scores of the example line on the form.
EXAMPLE_SCORES = ("5", "3", "0", "4", "1", "2")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/paper", entry_page, name="paper")
    app.router.add_post("/paper/check", check_page, name="paper_check")
    app.router.add_post("/paper/change", change_page, name="paper_change")
    app.router.add_post("/paper/count", count_page, name="paper_count")
    app.router.add_get(f"/paper/{{link:{LINK_PATTERN}}}", sign_in_page, name="paper_sign_in")
    app.router.add_post(f"/paper/{{link:{LINK_PATTERN}}}", sign_in, name="paper_sign_in_post")


# --- Signing in ------------------------------------------------------------------------


async def sign_in_page(request: web.Request) -> web.Response:
    link = request.match_info["link"]
    view = await paper_sign_in.check_sign_in(request.app[SERVICES], link)
    return _page(
        request,
        "paper/sign_in.html",
        {
            "meeting_ref": view.meeting_ref,
            "question": view.question,
            "csrf": request.app[SECURITY].csrf_token(_link_scope(link)),
        },
    )


async def sign_in(request: web.Request) -> web.Response:
    link = request.match_info["link"]
    form = await request.post()
    request.app[SECURITY].check_post(request, _text(form, "csrf"), _link_scope(link))
    session = await paper_sign_in.redeem_sign_in(request.app[SERVICES], link)
    response = web.HTTPSeeOther(request.app.router["paper"].url_for())
    name, path = _session_cookie(request)
    response.set_cookie(
        name,
        _serializer(request).dumps([session.person_id, session.meeting_id, session.expires]),
        path=path,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )  # no max_age: the browser forgets it when it closes; the expiry inside ends it sooner
    raise response


def _link_scope(link: str) -> str:
    return f"paper-link:{link}"


# --- The signed-in pages ----------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    """The session of a request, its CSRF scope and the acting person's Matrix ID."""

    session: PaperSession
    scope: str
    actor: str


async def _signed_in(request: web.Request) -> Signed:
    cookie = request.cookies.get(_session_cookie(request)[0], "")
    try:
        person_id, meeting_id, expires = _serializer(request).loads(cookie)
        session = PaperSession(int(person_id), int(meeting_id), int(expires))
    except (BadSignature, TypeError, ValueError) as error:
        raise NotAllowed(
            _(
                "You are not signed in. Use the link in your direct message from Harmony, "
                "or ask for a new one with !ballot paper."
            )
        ) from error
    actor = await paper_sign_in.session_actor(request.app[SERVICES], session)
    return Signed(session, f"paper-session:{cookie}", actor)


async def _checked_post(request: web.Request) -> tuple[Signed, MultiDictProxy[Any]]:
    signed = await _signed_in(request)
    form = await request.post()
    request.app[SECURITY].check_post(request, _text(form, "csrf"), signed.scope)
    return signed, form


async def entry_page(request: web.Request) -> web.Response:
    signed = await _signed_in(request)
    return await _entry(request, signed)


async def change_page(request: web.Request) -> web.Response:
    signed, form = await _checked_post(request)
    return await _entry(request, signed, lines=_text(form, LINES_FIELD))


async def _entry(
    request: web.Request,
    signed: Signed,
    *,
    lines: str = "",
    errors: list[Message] | None = None,
    error_field: str = LINES_FIELD,
) -> web.Response:
    # Holding the vote on paper withdraws an online ballot nobody has used, or refuses
    # (with the reason) once someone has voted online. ``!ballot paper`` did it already,
    # so this normally changes nothing.
    plan = await paper_votes.prepare_paper_vote(
        request.app[SERVICES], signed.actor, signed.session.meeting_ref
    )
    return _page(
        request,
        "paper/entry.html",
        {
            "plan": plan,
            "lines": lines,
            "errors": errors or [],
            "error_summary": bool(errors),
            "error_field": error_field,
            "csrf": request.app[SECURITY].csrf_token(signed.scope),
            "example": ", ".join(
                EXAMPLE_SCORES[i % len(EXAMPLE_SCORES)] for i in range(len(plan.options))
            ),
        },
        status=400 if errors else 200,
    )


async def check_page(request: web.Request) -> web.Response:
    signed, form = await _checked_post(request)
    ctx = request.app[SERVICES]
    ref = signed.session.meeting_ref
    lines = _text(form, LINES_FIELD)
    upload = _upload(form)
    plan = await paper_votes.prepare_paper_vote(ctx, signed.actor, ref)
    if upload is None:
        data, errors = ballots_from_lines(lines, plan)
        if errors:
            return await _entry(request, signed, lines=lines, errors=errors)
    else:
        data = upload
    try:
        checked = await paper_votes.check_paper_vote(ctx, signed.actor, ref, data)
    except InvalidInput as refused:
        field = LINES_FIELD if upload is None else FILE_FIELD
        return await _entry(
            request, signed, lines=lines, errors=[refused.message], error_field=field
        )
    return _page(
        request,
        "paper/check.html",
        {
            "check": checked,
            "question": plan.question,
            "rows": list(zip(checked.options, checked.totals, strict=True)),
            # What the count button sends again: the lines typed, or the file's text.
            "lines": lines if upload is None else "",
            "file_text": "" if upload is None else upload.decode("utf-8", "replace"),
            "csrf": request.app[SECURITY].csrf_token(signed.scope),
        },
    )


async def count_page(request: web.Request) -> web.Response:
    signed, form = await _checked_post(request)
    ctx = request.app[SERVICES]
    ref = signed.session.meeting_ref
    file_text = _text(form, "file_text")
    if file_text:
        data = file_text.encode("utf-8")
    else:
        plan = await paper_votes.prepare_paper_vote(ctx, signed.actor, ref)
        data, errors = ballots_from_lines(_text(form, LINES_FIELD), plan)
        if errors:
            return await _entry(request, signed, lines=_text(form, LINES_FIELD), errors=errors)
    view = await paper_votes.enter_paper_vote(ctx, signed.actor, ref, data)
    result = view.result or {}
    response = _page(
        request,
        "paper/result.html",
        {
            "view": view,
            "winner": result.get("winner"),
            "ballots": result.get("ballots", view.cast),
            "results_url": f"/meetings/{view.meeting_ref}/results",
        },
    )
    # The work this sign-in was for is done.
    name, path = _session_cookie(request)
    response.del_cookie(name, path=path, secure=_secure(request), samesite="Strict")
    return response


# --- The lines typed --------------------------------------------------------------------


def ballots_from_lines(text: str, plan: PaperVotePlan) -> tuple[bytes, list[Message]]:
    """The lines typed, one paper's scores each in the options' order, as the CSV file
    that ``harmony ballots enter`` takes; or what is wrong, line by line."""
    count = len(plan.options)
    rows: list[list[str]] = []
    errors: list[Message] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        # A blank between commas is 0, as in a ballot file.
        cells = [cell.strip() or "0" for cell in line.split(",")] if "," in line else line.split()
        wrong = next((cell for cell in cells if not SCORE.fullmatch(cell)), None)
        if wrong is not None:
            errors.append(
                _(
                    "Line %(line)s: “%(value)s” is not a score. Give each option a whole "
                    "number from 0 to 5.",
                    line=number,
                    value=wrong[:20],
                )
            )
        elif len(cells) != count:
            errors.append(
                _n(
                    "Line %(line)s has %(count)s score, but there are %(options)s options: "
                    "give one score for each option, in order.",
                    "Line %(line)s has %(count)s scores, but there are %(options)s options: "
                    "give one score for each option, in order.",
                    len(cells),
                    line=number,
                    options=count,
                )
            )
        else:
            rows.append(cells)
    if len(errors) > MOST_ERRORS:
        more = len(errors) - MOST_ERRORS
        errors = errors[:MOST_ERRORS]
        errors.append(
            _n(
                "There is %(count)s more line with a mistake.",
                "There are %(count)s more lines with a mistake.",
                more,
            )
        )
    if not rows and not errors:
        errors.append(_("Enter the ballots: one line of scores for each paper."))
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow(option.label for option in plan.options)
    writer.writerows(rows)
    return output.getvalue().encode("utf-8"), errors


# --- Helpers ----------------------------------------------------------------------------


def _page(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    response = request.app[RENDERER].page(
        request, template, context, language=chosen_language(request), status=status
    )
    # A secretary's page is never kept by a shared computer's browser or a proxy.
    response.headers["Cache-Control"] = "no-store"
    return response


def _serializer(request: web.Request) -> URLSafeSerializer:
    return URLSafeSerializer(request.app[SERVICES].secret_key, salt="harmony-paper-session")


def _secure(request: web.Request) -> bool:
    return request.secure or request.app[SETTINGS].public_base_url.startswith("https://")


def _session_cookie(request: web.Request) -> tuple[str, str]:
    """The session cookie's name and path: a ``__Host-`` cookie over https."""
    return (HOST_SESSION_COOKIE, "/") if _secure(request) else (SESSION_COOKIE, COOKIE_PATH)


def _text(form: MultiDictProxy[Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _upload(form: MultiDictProxy[Any]) -> bytes | None:
    """The CSV file chosen, if one was (a form without a file sends an empty part)."""
    field = form.get(FILE_FIELD)
    if isinstance(field, web.FileField):
        data = field.file.read()
        return data if data.strip() else None
    return None
