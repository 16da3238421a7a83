"""/metrics on the real companion: off unless asked for, request latencies by route NAME
(never a path: /vote/<link> paths hold secret tokens), and the database's figures."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from harmony_matrix.companion.app import make_app
from harmony_matrix.config import WebSettings
from harmony_matrix.services import ballots, delivery
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import OutboxMessage, Person
from tests.ballots.helpers import token_of
from tests.companion.ballot_pages import Ballot, open_round
from tests.companion.test_ballot_flow import post, token_for
from tests.services.helpers import ANA

MATRIX_ID = re.compile(r"@[^\s:\"]+:[^\s\"]+")


@pytest.fixture
async def monitored(demo: ServiceContext) -> AsyncIterator[TestClient]:
    settings = WebSettings(public_base_url=demo.public_base_url, metrics=True)
    async with TestClient(TestServer(make_app(demo, settings))) as client:
        yield client


async def scrape(client: TestClient) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return await response.text()


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples called ``name``, by their sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def cast_online(client: TestClient, ballot: Ballot, voter: str) -> None:
    link = ballot.links[voter]
    token = await token_for(client, link)
    response, page = await post(client, link, "cast", {"csrf_token": token, "score-1": "4"})
    assert response.status == 200, page


async def test_metrics_are_off_unless_asked_for(client):
    assert (await client.get("/metrics")).status == 404


async def test_requests_are_timed_by_route_name_and_never_by_path(monitored, demo):
    ballot = await open_round(demo)
    await cast_online(monitored, ballot, ANA)
    other = next(link for voter, link in ballot.links.items() if voter != ANA)
    assert (await monitored.get(f"/vote/{other}")).status == 200
    assert (await monitored.get(f"/vote/{ballot.link}")).status == 409  # used: says so
    assert (await monitored.get("/vote/not-a-link")).status == 403
    assert (await monitored.get("/no/such/page")).status == 404
    assert (await monitored.get("/assemblies")).status == 200
    assert (await monitored.request("PROPFIND", "/assemblies")).status == 405

    text = await scrape(monitored)
    counts = samples(text, "harmony_web_request_duration_seconds_count")
    by_route = {dict(labels)["route"]: value for labels, value in counts.items()}
    assert by_route["vote_ballot"] == 1  # the form, for its CSRF token
    assert by_route["vote_cast"] == 1
    assert by_route["public.assemblies"] == 1
    assert counts[(("method", "GET"), ("route", "vote_start"), ("status", "2xx"))] == 1
    assert counts[(("method", "GET"), ("route", "vote_start"), ("status", "4xx"))] == 2
    assert counts[(("method", "GET"), ("route", "unmatched"), ("status", "4xx"))] == 1
    # A method nobody uses is "other": a client cannot add series with made-up words.
    assert counts[(("method", "other"), ("route", "unmatched"), ("status", "4xx"))] == 1

    # Nothing of a link, a token or a person anywhere in the scrape.
    for link in ballot.links.values():
        assert link not in text
        assert token_of(f"/vote/{link}") not in text
    assert "/vote/" not in text and "not-a-link" not in text and "/no/such" not in text
    assert not MATRIX_ID.search(text)
    async with demo.transaction() as session:
        names = list(await session.scalars(select(Person.display_name)))
    assert names and not any(name in text for name in names)


async def test_ballots_cast_per_round_match_the_database(monitored, demo):
    ballot = await open_round(demo)
    voters = list(ballot.links)
    for voter in voters[:4]:
        await cast_online(monitored, ballot, voter)
    cast = samples(await scrape(monitored), "harmony_ballots_cast")
    opened = (("meeting", ballot.ref), ("round", "1"), ("state", "open"))
    assert cast == {opened: 4}
    assert (await ballots.round_status(demo, ballot.ref)).cast == 4

    demo.clock.advance(days=4)  # type: ignore[attr-defined]
    await ballots.close_ballot(demo, ANA, ballot.ref)
    closed = (("meeting", ballot.ref), ("round", "1"), ("state", "closed"))
    assert samples(await scrape(monitored), "harmony_ballots_cast") == {closed: 4}
    # A week after its close the round is no longer reported.
    demo.clock.advance(days=8)  # type: ignore[attr-defined]
    assert samples(await scrape(monitored), "harmony_ballots_cast") == {}


async def outbox_rows(ctx: ServiceContext) -> list[OutboxMessage]:
    async with ctx.transaction() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_the_outbox_figures_are_those_of_the_database(monitored, demo):
    await open_round(demo)  # ballot links delivered; announcements wait for the bot
    rows = await outbox_rows(demo)
    unsent = [row for row in rows if row.sent_at is None and row.failed_at is None]
    direct = next(row for row in unsent if row.is_direct)
    await delivery.give_up(demo, direct.id, "M_FORBIDDEN", report=False)
    # The oldest of the rest waits for a retry tomorrow (its member refuses invitations):
    # still unsent, but not what the age is about.
    parked = next(row for row in unsent if row.id != direct.id)
    async with demo.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == parked.id)
            .values(
                created_at=demo.now() - timedelta(days=365),
                next_attempt_at=demo.now() + timedelta(days=1),
            )
        )
    demo.clock.advance(hours=1)  # type: ignore[attr-defined]

    text = await scrape(monitored)
    assert samples(text, "harmony_database_up") == {(): 1}
    assert samples(text, "harmony_outbox_unsent_messages") == {(): len(unsent) - 1}
    oldest = min(row.created_at for row in unsent if row.id not in (direct.id, parked.id))
    age = (demo.now() - oldest).total_seconds()
    assert samples(text, "harmony_outbox_oldest_unsent_seconds") == {(): age}
    assert 3600 <= age < 300 * 86400  # not the parked one's year
    assert samples(text, "harmony_outbox_failed_messages") == {
        (("kind", "direct"),): 1,
        (("kind", "room"),): 0,
    }
