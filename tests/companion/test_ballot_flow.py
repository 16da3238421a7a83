"""The secret ballot over HTTP: start, form, errors, check your answers, change, cast,
receipt, and every way a link or a post can be refused."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from sqlalchemy import func, select, update

from harmony_matrix.companion.app import make_app
from harmony_matrix.companion.ballot_form import Problem, read_scores
from harmony_matrix.config import WebSettings
from harmony_matrix.i18n import format_datetime
from harmony_matrix.services import ballots
from harmony_matrix.services.ballots import BallotOption
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import Assembly, Person, SealedBallot, Visibility
from tests.ballots.helpers import OPTIONS
from tests.companion.ballot_pages import Ballot, open_round
from tests.services.helpers import ANA, OWG

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
GROUP = re.compile(r'<fieldset class="govuk-fieldset"[^>]*role="radiogroup"')


@pytest.fixture
async def ballot(demo: ServiceContext) -> Ballot:
    return await open_round(demo)


async def stored_ballots(ctx: ServiceContext) -> int:
    async with ctx.transaction() as session:
        return await session.scalar(select(func.count()).select_from(SealedBallot)) or 0


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no CSRF token"
    return html.unescape(found[1])


def order_of(page: str) -> list[int]:
    """The option numbers of the form's radio groups, in the order shown."""
    return list(dict.fromkeys(int(n) for n in re.findall(r'name="score-(\d+)"', page)))


def checked_of(page: str) -> dict[int, str]:
    return {
        int(n): v
        for n, v in re.findall(r'name="score-(\d+)" type="radio" value="(\d)"[^>]*checked', page)
    }


async def token_for(client: TestClient, link: str) -> str:
    response = await client.get(f"/vote/{link}/ballot")
    assert response.status == 200
    return csrf_of(await response.text())


async def post(
    client: TestClient, link: str, step: str, fields: dict[str, str], **kwargs: object
) -> tuple[ClientResponse, str]:
    response = await client.post(f"/vote/{link}/{step}", data=fields, **kwargs)  # type: ignore[arg-type]
    return response, await response.text()


# ---- The whole flow ------------------------------------------------------------------


async def test_a_member_votes_from_the_start_page_to_the_receipt(client, ballot, demo):
    start = await client.get(f"/vote/{ballot.link}")
    page = await start.text()
    assert start.status == 200
    assert "Should we publish" in page
    assert "0 (worst) to 5 (best)" in page and "counts as 0" in page
    assert "runoff" in page and "secret" in page
    # The closing time in Europe/London, as the English locale writes it.
    closes = (await ballots.round_status(demo, ballot.ref)).closes_at
    assert closes is not None
    assert f"Voting closes on {format_datetime(closes, 'en', 'Europe/London')}." in page
    assert "2026, 10:00 (Greenwich Mean Time)" in page
    assert f'href="/vote/{ballot.link}/ballot"' in page and "govuk-button--start" in page

    form = await client.get(f"/vote/{ballot.link}/ballot")
    page = await form.text()
    assert form.status == 200
    assert len(GROUP.findall(page)) == 3
    assert sorted(order_of(page)) == [1, 2, 3]
    assert " checked" not in page  # never pre-selected
    assert "0 (worst)" in page and "5 (best)" in page
    legends = re.findall(r"<legend[^>]*>\s*(.*?)\s*</legend>", page, re.S)
    assert sorted(legends) == sorted(f"<bdi>{text}</bdi>" for text in OPTIONS)
    token = csrf_of(page)

    response, page = await post(
        client, ballot.link, "ballot", {"csrf_token": token, "score-1": "5", "score-2": "3"}
    )
    assert response.status == 200
    assert "Check your answers" in page
    assert "Not scored – counts as 0" in page  # option 3 left blank
    assert '<input type="hidden" name="score-1" value="5">' in page
    assert '<input type="hidden" name="score-2" value="3">' in page
    assert 'name="score-3"' not in page
    assert f'action="/vote/{ballot.link}/cast"' in page
    assert page.count("Change") >= 3 and "Cast your secret vote" in page

    response, page = await post(
        client, ballot.link, "cast", {"csrf_token": token, "score-1": "5", "score-2": "3"}
    )
    assert response.status == 200
    assert response.history == ()  # no redirect
    assert "Your vote has been cast" in page
    receipt = re.search(r'<strong id="receipt-code" class="harmony-code">([^<]+)</strong>', page)
    assert receipt
    assert f'href="/meetings/{ballot.ref}/results"' in page
    assert f'href="/meetings/{ballot.ref}/ballots.csv"' in page
    assert "not even the secretary" in page
    assert ballot.link not in page.replace(f"/vote/{ballot.link}", "")  # no other link to it
    assert await stored_ballots(demo) == 1

    # Published once the ballot closes, with the blank counted as 0.
    demo.clock.advance(days=4)  # type: ignore[attr-defined]
    await ballots.close_ballot(demo, ANA, ballot.ref)
    published = await ballots.published_ballots(demo, ballot.ref)
    assert f"{receipt[1]},5,3,0" in published.splitlines()


async def test_a_private_meetings_receipt_points_to_no_public_page(client, ballot, demo):
    """A private assembly's meetings have no public results (decision 77): the receipt
    says where the result will be instead of linking to pages that do not exist."""
    async with demo.transaction() as session:
        await session.execute(
            update(Assembly).where(Assembly.slug == OWG).values(visibility=Visibility.PRIVATE)
        )
    token = await token_for(client, ballot.link)
    response, page = await post(client, ballot.link, "cast", {"csrf_token": token, "score-1": "4"})
    assert response.status == 200
    assert re.search(r'id="receipt-code"', page)
    assert f"/meetings/{ballot.ref}" not in page
    assert "This meeting is private" in page


async def test_the_pages_speak_the_voters_saved_language(client, ballot, demo):
    async with demo.transaction() as session:
        ana = await session.scalar(select(Person).where(Person.matrix_id == ANA))
        assert ana is not None
        ana.language = "fr"
    page = await (await client.get(f"/vote/{ballot.link}")).text()
    assert '<html lang="fr" dir="ltr"' in page
    closes = (await ballots.round_status(demo, ballot.ref)).closes_at
    assert closes is not None
    assert format_datetime(closes, "fr", "Europe/London") in page
    assert "novembre 2026" in page
    # The switcher still wins, and the saved preference beats Accept-Language.
    page = await (await client.get(f"/vote/{ballot.link}?lang=en")).text()
    assert '<html lang="en"' in page


async def test_without_a_saved_choice_accept_language_decides(client, ballot, demo):
    async with demo.transaction() as session:
        ana = await session.scalar(select(Person).where(Person.matrix_id == ANA))
        assert ana is not None
        ana.language = "xx"  # no such language: not a usable preference
    response = await client.get(f"/vote/{ballot.link}", headers={"Accept-Language": "fr-CH"})
    assert '<html lang="fr"' in await response.text()


# ---- Errors keep every answer ----------------------------------------------------------


async def test_nothing_scored_shows_the_error_summary_linked_to_the_first_radios(client, ballot):
    token = await token_for(client, ballot.link)
    response, page = await post(client, ballot.link, "ballot", {"csrf_token": token})
    assert response.status == 400
    assert "<title>Error: " in page
    assert "There is a problem" in page and 'data-module="govuk-error-summary"' in page
    assert "Score at least one option" in page
    # Each group says so, and the summary links to each group's first radio, in order.
    shown = order_of(page)
    assert re.findall(r'<a href="#score-(\d+)">Select a score for <bdi>', page) == [
        str(n) for n in shown
    ]
    for number in shown:
        assert f'id="score-{number}" name="score-{number}" type="radio" value="0"' in page
    assert page.count("govuk-form-group--error") == 3
    assert " checked" not in page


async def test_a_bad_value_is_reported_on_its_group_and_valid_answers_are_kept(client, ballot):
    token = await token_for(client, ballot.link)
    fields = {"csrf_token": token, "score-1": "4", "score-2": "9", "score-3": "0"}
    response, page = await post(client, ballot.link, "ballot", fields)
    assert response.status == 400
    assert page.count('class="govuk-error-message"') == 1
    assert '<a href="#score-2">Select a score from 0 to 5 for <bdi>Meet every two months</bdi>' in (
        page
    )
    assert checked_of(page) == {1: "4", 3: "0"}  # every valid answer kept, the bad one not
    assert 'id="score-2-error"' in page


async def test_a_score_for_an_option_the_ballot_does_not_have_is_refused(client, ballot, demo):
    token = await token_for(client, ballot.link)
    for step in ("ballot", "cast"):
        fields = {"csrf_token": token, "score-1": "4", "score-9": "5"}
        response, page = await post(client, ballot.link, step, fields)
        assert response.status == 400
        assert "does not have" in page and checked_of(page) == {1: "4"}
    assert await stored_ballots(demo) == 0


async def test_check_answers_change_shows_the_form_with_the_answers_and_no_error(client, ballot):
    token = await token_for(client, ballot.link)
    response, page = await post(
        client, ballot.link, "ballot", {"csrf_token": token, "score-1": "2", "score-3": "5"}
    )
    action = f'formaction="/vote/{ballot.link}/ballot?change=3#score-3"'
    assert action in page
    response = await client.post(
        f"/vote/{ballot.link}/ballot?change=3",
        data={"csrf_token": token, "score-1": "2", "score-3": "5"},
    )
    page = await response.text()
    assert response.status == 200
    assert "There is a problem" not in page and "<title>Error" not in page
    assert checked_of(page) == {1: "2", 3: "5"}
    # Focus lands on the chosen radio of the group being changed.
    assert re.search(r'name="score-3" type="radio" value="5" checked\s+autofocus>', page)
    assert page.count("autofocus") == 1


async def test_change_with_nothing_scored_is_the_form_not_an_error(client, ballot):
    token = await token_for(client, ballot.link)
    response = await client.post(f"/vote/{ballot.link}/ballot?change=", data={"csrf_token": token})
    assert response.status == 200
    assert "There is a problem" not in await response.text()


async def test_switching_language_on_a_posted_page_keeps_the_answers(client, ballot):
    token = await token_for(client, ballot.link)
    fields = {"csrf_token": token, "score-2": "1"}
    response, page = await post(client, ballot.link, "ballot", fields)
    assert f'form="check-form" formaction="/vote/{ballot.link}/ballot?lang=fr"' in page
    response = await client.post(f"/vote/{ballot.link}/ballot?lang=fr", data=fields)
    page = await response.text()
    assert response.status == 200 and '<html lang="fr"' in page
    assert '<input type="hidden" name="score-2" value="1">' in page
    # The form's own switcher posts its answers too (the form again, in that language).
    page = await (await client.get(f"/vote/{ballot.link}/ballot?lang=en")).text()
    assert f'form="ballot-form" formaction="/vote/{ballot.link}/ballot?change=&amp;lang=fr"' in (
        page
    )
    response = await client.post(f"/vote/{ballot.link}/ballot?change=&lang=fr", data=fields)
    page = await response.text()
    assert '<html lang="fr"' in page and checked_of(page) == {2: "1"}


# ---- Pages for a link that cannot vote ---------------------------------------------------


def flipped(text: str) -> str:
    """``text`` with its last character changed (to another URL-safe one)."""
    return text[:-1] + ("B" if text.endswith("A") else "A")


async def test_a_tampered_link_gets_its_own_page(client, ballot):
    round_id, token, expires, signature = ballot.link.split(".")
    for bad in (
        f"{round_id}.{token}.{int(expires) + 3600}.{signature}",
        f"{round_id}.{flipped(token)}.{expires}.{signature}",
        f"{round_id}.{token}.{expires}.{flipped(signature)}",
        "nonsense",
    ):
        for path in (f"/vote/{bad}", f"/vote/{bad}/ballot"):
            response = await client.get(path)
            page = await response.text()
            assert response.status == 403
            assert "This voting link does not work" in page
            assert "latest message from Harmony" in page and "secretary" in page


async def test_a_used_link_says_so_and_what_to_do(client, ballot, demo):
    token = await token_for(client, ballot.link)
    response, _page = await post(client, ballot.link, "cast", {"csrf_token": token, "score-1": "1"})
    assert response.status == 200
    for step in ("", "/ballot"):
        response = await client.get(f"/vote/{ballot.link}{step}")
        page = await response.text()
        assert response.status == 409
        assert "already been used" in page and "receipt code" in page
        assert "tell the secretary" in page
    # A second cast (a refresh of the receipt page re-posts) stores nothing.
    response, page = await post(client, ballot.link, "cast", {"csrf_token": token, "score-1": "5"})
    assert response.status == 409 and "already been used" in page
    # Its language switcher goes to the start page, not to the post's address.
    assert f'href="/vote/{ballot.link}?lang=fr"' in page
    assert await stored_ballots(demo) == 1


async def test_an_expired_link_says_where_the_result_will_be(client, ballot, demo):
    demo.clock.advance(days=4)  # type: ignore[attr-defined]
    response = await client.get(f"/vote/{ballot.link}")
    page = await response.text()
    assert response.status == 410
    assert "This ballot has closed" in page
    assert f'href="/meetings/{ballot.ref}/results"' in page


async def test_a_closed_ballot_says_where_the_result_is(client, demo):
    ballot = await open_round(demo)
    for link in ballot.links.values():
        await ballots.cast_ballot(demo, link, {1: 1, 2: 2, 3: 3})
    await ballots.close_ballot(demo, ANA, ballot.ref)  # early: everyone has voted
    response = await client.get(f"/vote/{ballot.link}/ballot")
    page = await response.text()
    assert response.status == 410
    assert "Voting has ended" in page and f'href="/meetings/{ballot.ref}/results"' in page


async def test_a_suspended_voter_is_told_and_nothing_is_stored(client, ballot, demo):
    token = await token_for(client, ballot.link)
    async with demo.transaction() as session:
        ana = await session.scalar(select(Person).where(Person.matrix_id == ANA))
        assert ana is not None
        ana.suspended_from = demo.now()
    for response in (
        await client.get(f"/vote/{ballot.link}"),
        await client.post(f"/vote/{ballot.link}/cast", data={"csrf_token": token, "score-1": "3"}),
    ):
        page = await response.text()
        assert response.status == 403
        assert "You are suspended" in page and "ask the secretary" in page
    assert await stored_ballots(demo) == 0


# ---- Refused posts -------------------------------------------------------------------------


async def test_a_post_without_or_with_a_wrong_csrf_token_stores_nothing(client, ballot, demo):
    other = next(link for who, link in ballot.links.items() if who != ANA)
    other_token = await token_for(client, other)
    for fields in (
        {"score-1": "5"},
        {"csrf_token": "", "score-1": "5"},
        {"csrf_token": "forged", "score-1": "5"},
        {"csrf_token": other_token, "score-1": "5"},  # another link's token
    ):
        for step in ("ballot", "cast"):
            response, page = await post(client, ballot.link, step, fields)
            assert response.status == 403, fields
            assert "could not be checked" in page
    assert await stored_ballots(demo) == 0


async def test_a_post_from_another_website_is_refused(client, ballot, demo):
    token = await token_for(client, ballot.link)
    fields = {"csrf_token": token, "score-1": "5"}
    response, page = await post(
        client, ballot.link, "cast", fields, headers={"Origin": "https://evil.example"}
    )
    assert response.status == 403 and "another website" in page
    response, _page = await post(
        client, ballot.link, "cast", fields, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert response.status == 403
    assert await stored_ballots(demo) == 0


async def test_a_link_votes_once_even_cast_100_times_at_once(client, ballot, demo):
    token = await token_for(client, ballot.link)
    fields = {"csrf_token": token, "score-1": "5", "score-2": "1"}
    responses = await asyncio.gather(
        *(client.post(f"/vote/{ballot.link}/cast", data=fields) for _ in range(100))
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [409] * 99, statuses
    assert await stored_ballots(demo) == 1


async def test_ballot_posts_are_rate_limited(demo, ballot):
    app = make_app(
        demo, WebSettings(public_base_url=demo.public_base_url, ballot_posts_per_minute=3)
    )
    async with TestClient(TestServer(app)) as limited:
        token = await token_for(limited, ballot.link)
        statuses = []
        for _ in range(5):
            response, _page = await post(limited, ballot.link, "ballot", {"csrf_token": token})
            statuses.append(response.status)
        assert statuses == [400, 400, 400, 429, 429]
        response, page = await post(limited, ballot.link, "cast", {"csrf_token": token})
        assert response.status == 429 and "Too many attempts" in page
        assert (await limited.get(f"/vote/{ballot.link}")).status == 200  # pages still show
    assert await stored_ballots(demo) == 0


# ---- The voter's order of options ------------------------------------------------------------


async def test_each_link_has_its_own_fixed_order_of_options(client, demo):
    ballot = await open_round(demo, how_many=9)
    orders = {}
    for who, link in ballot.links.items():
        first = order_of(await (await client.get(f"/vote/{link}/ballot")).text())
        again = order_of(await (await client.get(f"/vote/{link}/ballot")).text())
        token = csrf_of(await (await client.get(f"/vote/{link}/ballot")).text())
        _response, error = await post(client, link, "ballot", {"csrf_token": token})
        _response, check = await post(client, link, "ballot", {"csrf_token": token, "score-1": "1"})
        assert first == again == order_of(error)
        assert [int(n) for n in re.findall(r"\?change=(\d+)", check)] == first
        orders[who] = tuple(first)
    assert len(set(orders.values())) > 1, orders  # 9 voters, 6 possible orders


# ---- Arbitrary forms ------------------------------------------------------------------------


def _oracle(pairs: list[tuple[str, str]]) -> tuple[bool, bool]:
    """(whether the form holds a bad score field, whether it scores anything): an
    independent statement of the rules."""
    scores: dict[str, list[str]] = {}
    for key, value in pairs:
        if key.startswith("score-"):
            scores.setdefault(key, []).append(value)
    if any(key not in ("score-1", "score-2", "score-3") for key in scores):
        return True, False
    chosen = [[v for v in values if v != ""] for values in scores.values()]
    bad = any(len(values) > 1 or (values and values[0] not in VALID) for values in chosen)
    return bad, any(chosen)


VALID = ("0", "1", "2", "3", "4", "5")
KEYS = st.one_of(
    st.sampled_from(["score-1", "score-2", "score-3", "score-0", "score-4", "score-", "change"]),
    st.text(max_size=12),
    st.text(max_size=6).map(lambda t: "score-" + t),
)
VALUES = st.one_of(
    st.sampled_from(["0", "1", "2", "3", "4", "5", "", "6", "-1", "05", " 3", "3.0", "٣"]),
    st.text(max_size=12),
)


@pytest.fixture
async def unlimited(demo: ServiceContext) -> AsyncIterator[TestClient]:
    app = make_app(
        demo, WebSettings(public_base_url=demo.public_base_url, ballot_posts_per_minute=0)
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pairs=st.lists(st.tuples(KEYS, VALUES), max_size=8), step=st.sampled_from(["ballot", "cast"])
)
async def test_any_form_is_answered_and_casts_only_when_valid(unlimited, demo, pairs, step):
    if not hasattr(demo, "_fuzz_links"):
        ballot = await open_round(demo, how_many=9)
        demo._fuzz_links = list(ballot.links.values())  # type: ignore[attr-defined]
    links: list[str] = demo._fuzz_links  # type: ignore[attr-defined]
    if not links:
        return  # every link has voted; enough examples were valid
    link = links[-1]
    token = await token_for(unlimited, link)
    fields = MultiDict([("csrf_token", token), *((k, v) for k, v in pairs if k != "csrf_token")])
    before = await stored_ballots(demo)
    # Encoded as a browser would: aiohttp's client refuses some odd field names itself.
    response = await unlimited.post(
        f"/vote/{link}/{step}",
        data=urlencode(list(fields.items())),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    await response.text()
    assert response.status < 500
    bad, scored = _oracle([(k, v) for k, v in pairs if k != "csrf_token"])
    valid = scored and not bad
    changing = step == "ballot" and any(k == "change" for k, _v in pairs)
    stored = await stored_ballots(demo) - before
    if step == "cast" and valid:
        assert (response.status, stored) == (200, 1)
        links.pop()
    else:
        assert stored == 0
        # Asking to change an answer shows the form again; only a bad score is an error.
        ok = not bad if changing else valid
        assert response.status == (200 if ok else 400), (pairs, response.status)


# ---- The form reader on its own ---------------------------------------------------------------

THREE = (BallotOption(2, "Two"), BallotOption(1, "One"), BallotOption(3, "Three"))


def test_reading_scores_keeps_valid_answers_and_orders_errors_as_shown():
    form = MultiDict([("score-1", "7"), ("score-3", "2"), ("score-2", "x"), ("csrf_token", "t")])
    scored = read_scores(form, THREE)
    assert scored.answers == {3: 2}
    assert [(e.option.number, e.problem) for e in scored.errors] == [
        (2, Problem.NOT_A_SCORE),
        (1, Problem.NOT_A_SCORE),
    ]
    assert scored.scores(THREE) == {2: 0, 1: 0, 3: 2}


def test_two_values_for_one_option_are_not_a_score():
    scored = read_scores(MultiDict([("score-1", "1"), ("score-1", "2")]), THREE)
    assert scored.errors[0].problem is Problem.NOT_A_SCORE and scored.answers == {}


def test_nothing_scored_is_an_error_on_every_group_unless_changing():
    assert [(e.option.number, e.problem) for e in read_scores(MultiDict(), THREE).errors] == [
        (2, Problem.NOTHING_SCORED),
        (1, Problem.NOTHING_SCORED),
        (3, Problem.NOTHING_SCORED),
    ]
    assert read_scores(MultiDict(), THREE, require_a_score=False).errors == ()
