"""Every page of the companion, in every language Harmony ships: ``lang`` and ``dir`` on
``<html>`` (right to left for Arabic); and every name or text a person wrote, put into
a page, isolated from the page's own words (``<bdi>``, ``dir="auto"`` or Unicode
isolates), so that Arabic in an English sentence or English in an Arabic one keeps the
sentence in order.

The list of pages is checked against the app's routes: a new page fails here until it
is visited too. Welsh and Polish join by themselves when their catalogs are merged.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, text, update

from harmony_matrix.companion.app import make_app
from harmony_matrix.companion.language import LANGUAGE_COOKIE
from harmony_matrix.i18n import available_languages
from harmony_matrix.services import ballots, debate, petitions, roll_call
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import Assembly, BallotRound, Meeting, Option
from tests.ballots.helpers import links_by_person, meeting_at_vote, path_of, voters
from tests.companion.public_data import public_party
from tests.services.helpers import ANA, CHLOE, GWEN, OWG, prepared_moot
from tests.services.paper_helpers import sign_in_link

#: Languages written right to left (an oracle of our own, not Babel's answer).
RIGHT_TO_LEFT = {"ar", "he", "fa", "ur"}
#: Routes that answer with something other than a page (files, probes, a redirect).
NOT_PAGES = {
    "static",
    "healthz",
    "readyz",
    "metrics",
    "public.meeting_ics",
    "public.ballots_csv",
    "paper_sign_in_post",  # signs in, then sends the browser on to /paper
}
HTML_TAG = re.compile(r'<html lang="([^"]*)" dir="([^"]*)"')
CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PAPER_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
FSI, PDI = "\u2068", "\u2069"


class Pages:
    """A client of the companion that notes which route each page came from and checks
    its ``<html>`` element."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.visited: set[str] = set()
        self.problems: list[str] = []

    async def open(
        self, route: str, language: str, method: str, path: str, status: int = 200, **kwargs
    ) -> str:
        # The switcher's cookie: it wins over a member's own preference and the browser.
        self.client.session.cookie_jar.update_cookies({LANGUAGE_COOKIE: language})
        response = await self.client.request(method, path, **kwargs)
        html = await response.text()
        self.visited.add(route)
        if response.status != status:
            self.problems.append(f"{language} {method} {path}: {response.status}")
            return html
        found = HTML_TAG.search(html)
        wanted = (language, "rtl" if language in RIGHT_TO_LEFT else "ltr")
        if not found or found.groups() != wanted:
            got = found.groups() if found else None
            self.problems.append(f"{language} {method} {path}: <html> {got}, not {wanted}")
        return html


def page_routes(client: TestClient) -> set[str]:
    app = client.server.app  # type: ignore[attr-defined]
    return {route.name for route in app.router.routes() if route.name} - NOT_PAGES


def csrf(pattern: re.Pattern[str], html: str) -> str:
    found = pattern.search(html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture
async def pages(demo: ServiceContext) -> AsyncIterator[Pages]:
    async with TestClient(TestServer(make_app(demo))) as client:
        yield Pages(client)


async def vote_pages(pages: Pages, ctx: ServiceContext, language: str, link: str) -> None:
    """From the link to the receipt, with a wrong answer on the way."""
    base = f"/vote/{link}"
    await pages.open("vote_start", language, "GET", base)
    form = await pages.open("vote_ballot", language, "GET", f"{base}/ballot")
    token = csrf(CSRF_TOKEN, form)
    await pages.open(
        "vote_answers", language, "POST", f"{base}/ballot", 400, data={"csrf_token": token}
    )  # nothing scored: the form again, with the problem
    check = await pages.open(
        "vote_answers",
        language,
        "POST",
        f"{base}/ballot",
        data={"csrf_token": token, "score-1": "5", "score-2": "3"},
    )
    fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', check))
    await pages.open("vote_cast", language, "POST", f"{base}/cast", data=fields)


async def paper_pages(pages: Pages, ctx: ServiceContext, language: str) -> None:
    """From the secretary's link to the counted paper ballots."""
    ref = await meeting_at_vote(ctx, await voters(ctx, 6))
    link = await sign_in_link(ctx, ANA, ref)
    sign_in = await pages.open("paper_sign_in", language, "GET", f"/paper/{link}")
    response = await pages.client.post(
        f"/paper/{link}", data={"csrf": csrf(PAPER_CSRF, sign_in)}, allow_redirects=False
    )
    assert response.status == 303
    entry = await pages.open("paper", language, "GET", "/paper")
    lines = "5,0,1\n4,2,0\n"
    fields = {"csrf": csrf(PAPER_CSRF, entry), "ballots": lines}
    check = await pages.open("paper_check", language, "POST", "/paper/check", data=fields)
    fields = {"csrf": csrf(PAPER_CSRF, check), "ballots": lines, "file_text": ""}
    await pages.open("paper_change", language, "POST", "/paper/change", data=fields)
    await pages.open("paper_count", language, "POST", "/paper/count", data=fields)


async def test_every_page_has_lang_and_dir_in_every_language(pages, demo):
    party = await public_party(demo)
    public = {
        "public.home": "/",
        "public.assemblies": "/assemblies",
        "public.assembly": f"/assemblies/{OWG}",
        "public.meeting": f"/meetings/{party.debating}",
        "public.results": f"/meetings/{party.counted}/results",
        "public.petitions": "/petitions",
        "public.petition": f"/petitions/{party.petition}",
        "public.consensus": "/consensus",
        "public.accessibility": "/accessibility",
    }
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref)
    links = await links_by_person(demo)
    languages = available_languages()
    assert len(languages) <= len(present), "one voting link for each language"
    for language, who in zip(languages, present, strict=False):
        for route, path in public.items():
            await pages.open(route, language, "GET", path)
        await pages.open("vote_start", language, "GET", "/vote/not-a-link", status=403)
        await pages.open("missing", language, "GET", "/no-such-page", status=404)
        await vote_pages(pages, demo, language, path_of(links[who]))
    # Last: each paper vote is a new meeting, which moves the clock past the ballot above.
    for language in languages:
        await paper_pages(pages, demo, language)
    assert not pages.problems, "\n".join(pages.problems)
    assert page_routes(pages.client) <= pages.visited


def test_the_lang_check_can_fail():
    assert HTML_TAG.search('<html lang="ar" dir="ltr" class="x">').groups() != ("ar", "rtl")


# ---- Names isolated ------------------------------------------------------------------

PARTY = "حزب الوئام"
ASSEMBLY = "مجموعة العمل التشغيلية"
QUESTION = "هل نصدر نشرة شهرية؟"
PLACE = "قاعة المجتمع"
SUGGESTION = "نرسلها بالبريد"
OPTION = "بخط كبير"
RESULT_OPTION = "كل سنة"
OUTCOME = "كل شهرين"
PETITION = "عريضة أجور القطارات"
VOTE_QUESTION = "متى نجتمع؟"
VOTE_OPTION = "كل أسبوع"
WRITTEN = (
    PARTY,
    ASSEMBLY,
    QUESTION,
    PLACE,
    SUGGESTION,
    OPTION,
    RESULT_OPTION,
    OUTCOME,
    PETITION,
    VOTE_QUESTION,
    VOTE_OPTION,
)


def not_isolated(html: str) -> list[str]:
    """Each text a person wrote that the page puts, not isolated, among its own words.

    Isolated: in a ``<bdi>`` of its own, in Unicode isolates (U+2068 ... U+2069), or the
    whole of an element with ``dir="auto"``; an option's number ("3. ") may come with it.
    The page's <title> is text only (no <bdi>) and is left out."""
    body = re.sub(r"<title>.*?</title>", "", html, flags=re.S)
    wrong = []
    for written in WRITTEN:
        for found in re.finditer(re.escape(written), body):
            before = re.sub(r"\d+\. $", "", body[: found.start()])
            after = body[found.end() :]
            isolated = (
                (before.endswith("<bdi>") and after.startswith("</bdi>"))
                or (before.endswith(FSI) and after.startswith(PDI))
                or (re.search(r'dir="auto"[^>]*>$', before) and after.startswith("</"))
            )
            if not isolated:
                wrong.append(body[max(0, found.start() - 80) : found.end() + 40])
    return wrong


async def test_names_written_right_to_left_are_isolated_on_every_page(demo):
    demo.party = replace(demo.party, name=PARTY)
    party = await public_party(demo)
    async with demo.transaction() as session:
        await session.execute(update(Assembly).where(Assembly.slug == OWG).values(name=ASSEMBLY))
        counted = await session.get(Meeting, int(party.counted.split("-")[1]))
        counted.question = QUESTION
        round_ = await session.scalar(
            select(BallotRound).where(BallotRound.meeting_id == counted.id)
        )
        stored = json.dumps(round_.result, ensure_ascii=False).replace("Meet yearly", RESULT_OPTION)
        round_.result = json.loads(stored)
        await session.execute(text("UPDATE consensus_records SET outcome = :o"), {"o": OUTCOME})
    ref = await prepared_moot(demo)
    await roll_call.open_meeting(demo, ANA, ref)
    await roll_call.record_attendance(demo, GWEN, ref)
    await debate.add_suggestion(demo, CHLOE, ref, SUGGESTION)
    await debate.start_debate(demo, ANA, ref)
    await debate.add_option(demo, ANA, ref, OPTION)
    async with demo.transaction() as session:
        meeting = await session.get(Meeting, int(ref.split("-")[1]))
        meeting.question, meeting.place = QUESTION, PLACE
    started = await petitions.start_petition(demo, CHLOE, PETITION)
    # A ballot whose question and option are Arabic.
    present = await voters(demo, 6)
    voting = await meeting_at_vote(demo, present)
    async with demo.transaction() as session:
        meeting = await session.get(Meeting, int(voting.split("-")[1]))
        meeting.question = VOTE_QUESTION
        await session.execute(
            update(Option)
            .where(Option.meeting_id == meeting.id, Option.number == 1)
            .values(text=VOTE_OPTION)
        )
    await ballots.open_ballot(demo, ANA, voting)
    link = path_of((await links_by_person(demo))[ANA])

    paths = [
        "/",
        "/assemblies",
        f"/assemblies/{OWG}",
        f"/meetings/{ref}",
        f"/meetings/{party.counted}",
        f"/meetings/{party.counted}/results",
        "/petitions",
        f"/petitions/{started.ref}",
        "/consensus",
        "/accessibility",
        f"/vote/{link}",
        f"/vote/{link}/ballot",
    ]
    seen: set[str] = set()
    problems = []
    async with TestClient(TestServer(make_app(demo))) as client:
        for language in ("ar", "en"):
            for path in paths:
                response = await client.get(path, params={"lang": language})
                html = await response.text()
                assert response.status == 200, (path, html[:300])
                seen |= {written for written in WRITTEN if written in html}
                problems += [f"{language} {path}: {wrong}" for wrong in not_isolated(html)]
            form = await client.get(f"/vote/{link}/ballot", params={"lang": language})
            token = csrf(CSRF_TOKEN, await form.text())
            check = await client.post(
                f"/vote/{link}/ballot", data={"csrf_token": token, "score-1": "4"}
            )
            html = await check.text()
            assert VOTE_OPTION in html
            problems += [f"{language} check: {wrong}" for wrong in not_isolated(html)]
    assert seen == set(WRITTEN), set(WRITTEN) - seen  # each name was on some page
    assert not problems, "\n".join(problems)


def test_the_isolation_check_can_fail():
    assert not_isolated(f"<p>{QUESTION} is asked</p>") != []
    assert not_isolated(f"<p><bdi>{QUESTION}</bdi> is asked</p>") == []
    assert not_isolated(f"<p>{FSI}3. {OPTION}{PDI} won</p>") == []
    assert not_isolated(f'<p class="govuk-body" dir="auto">{QUESTION}</p>') == []
    assert not_isolated(f"<title>{QUESTION}</title><h1><bdi>{QUESTION}</bdi></h1>") == []
    assert not_isolated(f"<a>{PARTY}</a>") != []
