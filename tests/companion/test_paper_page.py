"""The secretary's paper-ballot pages: a one-time link signs in, the ballots are typed
in (or a CSV file chosen), checked, and counted to a result; the online rights of an
unused online ballot are withdrawn first."""

from __future__ import annotations

import re
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from aiohttp import FormData
from sqlalchemy import func, select, update

from harmony_matrix.companion.paper import HOST_SESSION_COOKIE, SESSION_COOKIE
from harmony_matrix.constitution.process import Phase
from harmony_matrix.errors import RuleViolation
from harmony_matrix.services import ballots
from harmony_matrix.storage.models import (
    AuditEvent,
    CountedBallot,
    Meeting,
    PaperSignIn,
    Person,
    VotingRight,
)
from tests.ballots.helpers import links_by_person, meeting_at_vote, path_of, voters
from tests.services.helpers import ANA
from tests.services.paper_helpers import sign_in_link

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
HEADER = "1. Meet monthly,2. Meet every two months,3. Meet yearly"


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


async def count_of(ctx, model) -> int:
    async with ctx.transaction() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
async def ref(demo) -> str:
    return await meeting_at_vote(demo, await voters(demo, 6))


async def signed_in(client, ctx, ref: str, actor: str = ANA) -> str:
    """Sign in through a fresh link; the entry page's HTML."""
    link = await sign_in_link(ctx, actor, ref)
    page = await client.get(f"/paper/{link}")
    assert page.status == 200
    posted = await client.post(
        f"/paper/{link}", data={"csrf": csrf_of(await page.text())}, allow_redirects=False
    )
    assert posted.status == 303 and posted.headers["Location"] == "/paper"
    entry = await client.get("/paper")
    assert entry.status == 200
    return await entry.text()


async def test_from_the_link_to_a_counted_vote_and_consensus(client, demo, ref):
    await ballots.open_ballot(demo, ANA, ref)  # online, but nobody has voted
    assert await count_of(demo, VotingRight) == 6
    link = await sign_in_link(demo, ANA, ref)

    page = await client.get(f"/paper/{link}")
    html = await page.text()
    assert page.status == 200
    assert f"Sign in to enter paper ballots for {ref}" in html
    assert page.headers["Cache-Control"] == "no-store"
    assert await count_of(demo, VotingRight) == 6  # looking changes nothing
    posted = await client.post(
        f"/paper/{link}", data={"csrf": csrf_of(html)}, allow_redirects=False
    )
    assert posted.status == 303 and posted.headers["Location"] == "/paper"

    entry = await client.get("/paper")
    html = await entry.text()
    assert entry.status == 200
    assert f"Enter the paper ballots of {ref}" in html
    assert "6 people present may vote" in html
    assert (
        html.index("Meet monthly") < html.index("Meet every two months") < html.index("Meet yearly")
    )
    assert await count_of(demo, VotingRight) == 0  # the online rights are withdrawn
    with pytest.raises(RuleViolation, match="held on paper"):
        await ballots.open_ballot(demo, ANA, ref)

    lines = "5, 0, 1\n5 1 0\n\n4,2,0\n0,5,5\n"
    checked = await client.post("/paper/check", data={"csrf": csrf_of(html), "ballots": lines})
    html = await checked.text()
    assert checked.status == 200, html
    assert f"Check the paper ballots of {ref}" in html
    assert "4 ballots, of at most 6." in html
    totals = re.findall(r'govuk-table__cell--numeric">\s*([0-9]+)', html)
    assert totals == ["14", "8", "6"]
    assert await count_of(demo, CountedBallot) == 0  # nothing stored yet

    counted = await client.post(
        "/paper/count", data={"csrf": csrf_of(html), "ballots": lines, "file_text": ""}
    )
    html = await counted.text()
    assert counted.status == 200, html
    assert f"Paper ballots of {ref} counted" in html
    assert "Consensus:" in html and "<bdi>1. Meet monthly</bdi>" in html
    assert f'href="/meetings/{ref}/results"' in html
    assert await count_of(demo, CountedBallot) == 4
    async with demo.transaction() as session:
        meeting = await session.get(Meeting, int(ref.split("-")[1]))
        assert meeting.phase is Phase.CONSENSUS
        actions = set(await session.scalars(select(AuditEvent.action)))
    assert {"paper.signed_in", "ballot.on_paper", "ballot.paper"} <= actions
    # Signed out: the cookie is gone, and the pages refuse.
    cleared = SimpleCookie(counted.headers["Set-Cookie"])[SESSION_COOKIE]
    assert cleared.value == "" and cleared["path"] == "/paper"
    assert (await client.get("/paper")).status == 403


async def test_the_session_cookie_is_strict_and_carries_no_more_than_it_needs(client, demo, ref):
    link = await sign_in_link(demo, ANA, ref)
    page = await client.get(f"/paper/{link}")
    posted = await client.post(
        f"/paper/{link}", data={"csrf": csrf_of(await page.text())}, allow_redirects=False
    )
    header = posted.headers["Set-Cookie"]
    cookie = SimpleCookie(header)[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/paper"
    assert not cookie["secure"]  # plain http here; https gets Secure
    assert not cookie["max-age"] and not cookie["expires"]  # gone when the browser closes
    assert link not in header and link.split(".")[1] not in header
    # person, meeting, expiry (itsdangerous: payload.signature)
    import base64
    import json

    payload = cookie.value.split(".")[0]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    async with demo.transaction() as session:
        ana = await session.scalar(select(Person).where(Person.matrix_id == ANA))
    assert decoded[:2] == [ana.id, int(ref.split("-")[1])] and len(decoded) == 3


async def test_the_cookie_is_secure_over_https(demo, ref):
    from aiohttp.test_utils import TestClient, TestServer

    from harmony_matrix.companion.app import make_app
    from harmony_matrix.config import WebSettings

    app = make_app(demo, WebSettings(public_base_url="https://vote.example.org"))
    async with TestClient(TestServer(app)) as client:
        link = await sign_in_link(demo, ANA, ref)
        page = await client.get(f"/paper/{link}")
        posted = await client.post(
            f"/paper/{link}", data={"csrf": csrf_of(await page.text())}, allow_redirects=False
        )
        cookie = SimpleCookie(posted.headers["Set-Cookie"])[HOST_SESSION_COOKIE]
        # A __Host- cookie: Secure, Path=/, no Domain (a sibling subdomain cannot plant one).
        assert cookie["secure"] and cookie["path"] == "/" and not cookie["domain"]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"


async def test_every_post_needs_its_csrf_token(client, demo, ref):
    link = await sign_in_link(demo, ANA, ref)
    page = await client.get(f"/paper/{link}")
    link_token = csrf_of(await page.text())
    for data in ({}, {"csrf": "forged"}):
        refused = await client.post(f"/paper/{link}", data=data, allow_redirects=False)
        assert refused.status == 403
    other_site = await client.post(
        f"/paper/{link}",
        data={"csrf": link_token},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert other_site.status == 403
    async with demo.transaction() as session:
        assert (await session.scalar(select(PaperSignIn.used_at))) is None  # not spent

    html = await signed_in(client, demo, ref)
    session_token = csrf_of(html)
    for path in ("/paper/check", "/paper/change", "/paper/count"):
        for token in (None, link_token, "forged"):
            data = {"ballots": "5,0,1"} | ({"csrf": token} if token else {})
            assert (await client.post(path, data=data)).status == 403, (path, token)
    assert await count_of(demo, CountedBallot) == 0
    ok = await client.post("/paper/check", data={"csrf": session_token, "ballots": "5,0,1"})
    assert ok.status == 200


async def test_a_used_link_is_refused(client, demo, ref):
    link = await sign_in_link(demo, ANA, ref)
    page = await client.get(f"/paper/{link}")
    token = csrf_of(await page.text())
    first = await client.post(f"/paper/{link}", data={"csrf": token}, allow_redirects=False)
    assert first.status == 303
    for again in (
        client.get(f"/paper/{link}"),
        client.post(f"/paper/{link}", data={"csrf": token}, allow_redirects=False),
    ):
        response = await again
        assert response.status == 403
        assert "already been used" in await response.text()
        assert "Set-Cookie" not in response.headers


async def test_bad_lines_are_named_and_the_text_is_kept(client, demo, ref):
    html = await signed_in(client, demo, ref)
    lines = "5,0,1\n7,1,1\n1 2\nfive,0,0\n"
    response = await client.post("/paper/check", data={"csrf": csrf_of(html), "ballots": lines})
    html = await response.text()
    assert response.status == 400
    assert "<title>Error:" in html and "There is a problem" in html
    assert "Line 2: “7” is not a score." in html
    assert "Line 3 has 2 scores, but there are 3 options" in html
    assert "Line 4: “five” is not a score." in html
    assert 'href="#ballots"' in html
    assert ">5,0,1\n7,1,1\n1 2\nfive,0,0\n</textarea>" in html
    assert await count_of(demo, CountedBallot) == 0

    empty = await client.post("/paper/check", data={"csrf": csrf_of(html), "ballots": "\n  \n"})
    assert empty.status == 400
    assert "Enter the ballots: one line of scores for each paper." in await empty.text()

    too_many = "\n".join(["1,2,3"] * 7)
    response = await client.post("/paper/check", data={"csrf": csrf_of(html), "ballots": too_many})
    assert response.status == 400
    text = await response.text()
    assert "There are 7 paper ballots, but the number of people present who may vote is 6." in text
    assert "1,2,3\n1,2,3" in text
    assert await count_of(demo, CountedBallot) == 0


async def test_change_goes_back_with_the_lines_kept(client, demo, ref):
    html = await signed_in(client, demo, ref)
    checked = await client.post("/paper/check", data={"csrf": csrf_of(html), "ballots": "1,2,3"})
    html = await checked.text()
    assert 'formaction="/paper/change"' in html
    back = await client.post(
        "/paper/change", data={"csrf": csrf_of(html), "ballots": "1,2,3", "file_text": ""}
    )
    assert back.status == 200
    assert ">1,2,3</textarea>" in await back.text()


async def test_a_csv_file_as_harmony_ballots_enter_takes(client, demo, ref):
    html = await signed_in(client, demo, ref)
    form = FormData()
    form.add_field("csrf", csrf_of(html))
    form.add_field("ballots", "")
    form.add_field(
        "file",
        f"{HEADER}\n0,5,1\n1,4,0\n0,3,5\n".encode(),
        filename="ballots.csv",
        content_type="text/csv",
    )
    checked = await client.post("/paper/check", data=form)
    html = await checked.text()
    assert checked.status == 200, html
    assert "3 ballots, of at most 6." in html
    file_text = re.search(r'name="file_text" value="([^"]*)"', html)
    assert file_text and "0,5,1" in file_text.group(1)
    counted = await client.post(
        "/paper/count",
        data={
            "csrf": csrf_of(html),
            "ballots": "",
            "file_text": f"{HEADER}\n0,5,1\n1,4,0\n0,3,5\n",
        },
    )
    assert counted.status == 200
    assert "<bdi>2. Meet every two months</bdi>" in await counted.text()

    bad = FormData()
    bad.add_field("csrf", csrf_of(html))
    bad.add_field("file", b"Nope,2. Meet every two months\n1,2\n", filename="x.csv")
    # Signed out after counting: a new sign-in is needed for anything else.
    assert (await client.post("/paper/check", data=bad)).status == 403


async def test_a_bad_file_is_named_on_the_form(client, demo, ref):
    html = await signed_in(client, demo, ref)
    form = FormData()
    form.add_field("csrf", csrf_of(html))
    form.add_field("ballots", "kept")
    form.add_field("file", f"{HEADER}\n0,9,1\n".encode(), filename="ballots.csv")
    response = await client.post("/paper/check", data=form)
    html = await response.text()
    assert response.status == 400
    assert 'href="#file"' in html and "Row 2" in html
    assert ">kept</textarea>" in html


async def test_a_person_no_longer_an_organiser_is_refused(client, demo, ref):
    html = await signed_in(client, demo, ref)
    async with demo.transaction() as session:
        await session.execute(
            update(Person)
            .where(Person.matrix_id == ANA)
            .values(suspended_from=demo.now() - timedelta(minutes=1))
        )
    assert (await client.get("/paper")).status == 403
    refused = await client.post("/paper/check", data={"csrf": csrf_of(html), "ballots": "1,2,3"})
    assert refused.status == 403
    assert "suspended" in await refused.text()


async def test_without_a_session_or_with_a_forged_one_nothing_opens(client, demo, ref):
    assert (await client.get("/paper")).status == 403
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: "[1, 1, 99999999999].forged"})
    response = await client.get("/paper")
    assert response.status == 403
    assert "You are not signed in." in await response.text()
    assert (await client.get("/paper/1.abc.2.def")).status == 403
    assert (await client.get("/paper/nonsense")).status == 404


async def test_a_session_expires(client, demo, ref):
    await signed_in(client, demo, ref)
    demo.clock.advance(hours=2)
    response = await client.get("/paper")
    assert response.status == 403
    assert "signed out" in await response.text()


async def test_paper_is_refused_once_someone_voted_online(client, demo, ref):
    await ballots.open_ballot(demo, ANA, ref)
    [first, *_rest] = (await links_by_person(demo)).values()
    await ballots.cast_ballot(demo, path_of(first), {1: 5, 2: 0, 3: 1})
    link = await sign_in_link(demo, ANA, ref)
    page = await client.get(f"/paper/{link}")
    await client.post(f"/paper/{link}", data={"csrf": csrf_of(await page.text())})
    response = await client.get("/paper")
    assert response.status == 409
    assert "1 person has already voted online, so this vote stays online" in await response.text()
    assert await count_of(demo, VotingRight) == 6


async def test_no_clear_winner_sends_the_meeting_back_to_debate(client, demo, ref):
    html = await signed_in(client, demo, ref)
    lines = "5,5,0\n5,5,0\n"
    checked = await client.post("/paper/check", data={"csrf": csrf_of(html), "ballots": lines})
    counted = await client.post(
        "/paper/count", data={"csrf": csrf_of(await checked.text()), "ballots": lines}
    )
    html = await counted.text()
    assert counted.status == 200
    assert "No clear winner" in html and "goes back to debate" in html
    async with demo.transaction() as session:
        meeting = await session.get(Meeting, int(ref.split("-")[1]))
        assert meeting.phase is Phase.DEBATE
