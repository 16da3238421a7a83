"""The public pages over HTTP: each shows what it should, private assemblies are nowhere,
results appear only once counted, and members' words are shown as text."""

import csv
import io
import json
import re
from html import unescape
from xml.etree import ElementTree

import icalendar
import pytest
from sqlalchemy import select, text

from harmony_matrix.services import ballots, debate, meetings, petitions, roll_call
from harmony_matrix.storage.models import BallotRound
from tests.companion.public_data import (
    PETITION_TITLE,
    PLANNED_QUESTION,
    PRIVATE,
    PRIVATE_QUESTION,
    TOTALS,
    WINNER,
    counted_vote,
    debating,
    open_vote,
    private_decision,
    public_party,
)
from tests.services.helpers import ANA, BRYN, CHLOE, MEDIA, OWG, prepared_moot

SVG = "{http://www.w3.org/2000/svg}"


async def _get(client, path, status=200, **params):
    response = await client.get(path, params=params)
    body = await response.text()
    assert response.status == status, body
    return response, body


def _main(html: str) -> str:
    """The page's main content as text, tags removed."""
    main = html[html.index("<main") : html.index("</main>")]
    main = re.sub(r"</?(?:bdi|a|code|wbr)\b[^>]*>", "", main)  # inline: no word break
    main = re.sub("[\u2068\u2069]", "", main)  # isolates (the steps' option names) are unseen
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", main)))


def _title(html: str) -> str:
    return unescape(re.search(r"<title>(.*?)</title>", html, re.S).group(1)).strip()


def _svgs(html: str) -> list[ElementTree.Element]:
    return [ElementTree.fromstring(svg) for svg in re.findall(r"<svg.*?</svg>", html, re.S)]


async def _sql(ctx, statement, **params):
    async with ctx.transaction() as session:
        await session.execute(text(statement), params)


async def test_the_home_page_links_to_the_record(client, demo):
    _response, html = await _get(client, "/")
    assert _title(html) == "Home – Harmony Party UK"
    assert html.count("<h1") == 1
    for path in ("/assemblies", "/petitions", "/consensus", "/accessibility"):
        assert f'href="{path}"' in html


async def test_the_assemblies_are_the_public_ones(client, demo):
    _response, html = await _get(client, "/assemblies")
    assert _title(html) == "Assemblies – Harmony Party UK"
    assert 'href="/assemblies/operational-working-group"' in html
    assert "<bdi>Operational Working Group</bdi>" in html
    assert "Policy Society for Disability" not in html
    assert PRIVATE not in html


@pytest.mark.parametrize("how", ["slug", "reference", "name"])
async def test_a_private_assembly_s_page_is_the_missing_page(client, demo, how):
    typed = {
        "slug": PRIVATE,
        "reference": "HPUK-ASSE-2025-11-10",
        "name": "Policy Society for Disability",
    }[how]
    hidden, hidden_html = await _get(client, f"/assemblies/{typed}", status=404)
    # The same address once no assembly answers to it at all.
    await _sql(
        demo,
        "UPDATE assemblies SET slug = 'x', reference = 'HPUK-X', name = 'X' WHERE slug = :s",
        s=PRIVATE,
    )
    missing, missing_html = await _get(client, f"/assemblies/{typed}", status=404)
    assert hidden_html == missing_html
    assert dict(hidden.headers).keys() == dict(missing.headers).keys()


async def test_the_assembly_page_shows_the_seed_and_its_meetings_and_decisions(client, demo):
    ref, _receipts = await counted_vote(demo)
    planned = await meetings.call_moot(demo, ANA, OWG, PLANNED_QUESTION)
    _response, html = await _get(client, f"/assemblies/{OWG}")
    assert _title(html) == "Operational Working Group – Harmony Party UK"
    assert html.count("<h1") == 1
    page = _main(html)
    for expected in (
        "Operational Working Group",
        "Helping Harmony work (and play!)",
        "About this assembly",
        "All Party participants are automatically considered members of this assembly.",
        "Purpose of action",
        "This assembly maintains the constitution, records consensus",
        "Composition",
        "All Harmony participants are automatically a member of this assembly.",
        "HPUK-ASSE-2025-09-4",
        "Member assemblies",
        "Harmony Rec",
        PLANNED_QUESTION,
        "Meet every two months",
    ):
        assert expected in page, expected
    assert f'href="/meetings/{planned.ref}"' in html
    assert f'href="/meetings/{ref}"' in html
    assert "Planning" in page and "Consensus reached" in page
    media = await _get(client, f"/assemblies/{MEDIA}")
    assert 'href="/assemblies/presentation-of-policy"' in media[1]


async def test_the_meeting_page_shows_where_when_and_what_was_said(client, demo):
    ref = await debating(demo)
    _response, html = await _get(client, f"/meetings/{ref}")
    assert html.count("<h1") == 1
    page = _main(html)
    for expected in (
        "Assembly Moot " + ref,
        "Should we publish a monthly newsletter?",
        "Debate",
        "The meeting is in its debate phase.",
        "Media Working Group",
        "Community Hall, 1 High St",
        "Step-free entrance, hearing loop, live captions online",
        "Survey results",
        "Slides, large print copies",
        "Print it in large type",
        "Send it by email",
        "Merged into option 3",
        "Large print, also by email",
        "No newsletter",
    ):
        assert expected in page, expected
    assert re.search(r"Date and time \w+day, \d+ \w+ 2026, \d\d:\d\d \(Greenwich Mean Time\)", page)
    assert 'href="https://meet.example/harmony"' in html
    assert f'href="/meetings/{ref}.ics"' in html
    assert f"/meetings/{ref}/results" not in html  # no vote yet


async def test_a_late_date_is_explained(client, demo):
    ref = await prepared_moot(demo, wait_for_start=False)
    await _sql(demo, "UPDATE meetings SET schedule_explanation = 'The hall is booked until then'")
    _response, html = await _get(client, f"/meetings/{ref}")
    assert "Why the meeting is on this date" in html
    assert "<bdi>The hall is booked until then</bdi>" in html


async def test_a_private_meeting_is_the_missing_page(client, demo):
    ref = await private_decision(demo)
    number = int(ref.split("-")[1])
    missing = f"M-{number + 100}"
    for suffix in ("", ".ics", "/results", "/ballots.csv"):
        _hidden, hidden_html = await _get(client, f"/meetings/{ref}{suffix}", status=404)
        _gone, missing_html = await _get(client, f"/meetings/{missing}{suffix}", status=404)
        assert hidden_html.replace(ref, missing) == missing_html
        assert PRIVATE_QUESTION not in hidden_html


async def test_the_calendar_file(client, demo):
    ref = await prepared_moot(demo, wait_for_start=False)
    response = await client.get(f"/meetings/{ref}.ics")
    assert response.status == 200
    assert response.content_type == "text/calendar"
    assert f'filename="{ref}.ics"' in response.headers["Content-Disposition"]
    calendar = icalendar.Calendar.from_ical(await response.read())
    (event,) = calendar.walk("VEVENT")
    assert ref in str(event["SUMMARY"])
    assert str(event["LOCATION"]) == "Community Hall, 1 High St"
    assert event.decoded("DTSTART").tzinfo is not None
    assert str(event["DTSTART"].params["TZID"]) == "Europe/London"


async def test_an_undated_meeting_has_no_calendar_link_or_file(client, demo):
    planned = await meetings.call_moot(demo, ANA, OWG, PLANNED_QUESTION)
    _response, html = await _get(client, f"/meetings/{planned.ref}")
    assert ".ics" not in html
    assert "Not set yet" in _main(html)
    await _get(client, f"/meetings/{planned.ref}.ics", status=404)


async def test_the_results_after_a_real_ballot(client, demo):
    ref, _receipts = await counted_vote(demo)
    _response, html = await _get(client, f"/meetings/{ref}/results")
    assert _title(html) == f"Results of {ref} – Harmony Party UK"
    assert html.count("<h1") == 1
    page = _main(html)
    assert f"The winning option is {WINNER}." in page
    assert "9 of 9 people voted. Turnout: 100%." in page

    totals_chart, runoff_chart = _svgs(html)
    assert totals_chart.get("role") == "img"
    labels = [t.text.strip("\u2068\u2069") for t in totals_chart.iter(f"{SVG}text")][::2]
    figures = [t.text for t in totals_chart.iter(f"{SVG}text")][1::2]
    assert dict(zip(labels, map(int, figures), strict=True)) == TOTALS
    # The same figures in the table beside it.
    for label, total in TOTALS.items():
        assert re.search(
            rf"<th scope=\"row\"[^>]*><bdi>{re.escape(label)}</bdi></th>\s*"
            rf"<td class=\"govuk-table__cell govuk-table__cell--numeric\">{total}</td>",
            html,
        ), label
    runoff_figures = [t.text for t in runoff_chart.iter(f"{SVG}text")][1::2]
    assert runoff_figures == ["5", "4"]
    assert "Scored both the same" in page

    # The steps, in the words the room was told.
    assert f"{WINNER} wins the runoff." in page
    assert f"{WINNER} is the winner." in page
    assert f'href="/meetings/{ref}/ballots.csv?round=1"' in html


async def test_results_stay_hidden_while_the_ballot_is_open(client, demo):
    ref = await open_vote(demo)
    _response, html = await _get(client, f"/meetings/{ref}/results")
    page = _main(html)
    assert "The results are published when the ballot closes." in page
    assert "2 of 9 people voted." in page
    assert "<svg" not in html
    assert "Total score" not in page and "winning" not in page
    assert "ballots.csv" not in html
    await _get(client, f"/meetings/{ref}/ballots.csv", status=404)


async def test_a_meeting_without_a_vote_has_empty_results(client, demo):
    ref = await debating(demo)
    _response, html = await _get(client, f"/meetings/{ref}/results")
    assert "There has been no vote in this meeting yet." in html


async def test_the_published_ballots(client, demo):
    ref, receipts = await counted_vote(demo)
    response = await client.get(f"/meetings/{ref}/ballots.csv")
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    body = await response.text()
    assert body == await ballots.published_ballots(demo, ref)
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["receipt", *TOTALS]
    assert sorted(row[0] for row in rows[1:]) == sorted(receipts)
    same = await client.get(f"/meetings/{ref}/ballots.csv", params={"round": "1"})
    assert await same.text() == body
    assert (await client.get(f"/meetings/{ref}/ballots.csv", params={"round": "2"})).status == 404
    assert (await client.get(f"/meetings/{ref}/ballots.csv", params={"round": "x"})).status == 400


async def test_the_record_of_consensus(client, demo):
    party = await public_party(demo)
    _response, html = await _get(client, "/consensus")
    page = _main(html).replace(" ", "")
    text_page = _main(html)
    assert "The chain verifies" in text_page
    head = re.search(r"Head hash\s*</dt>\s*<dd[^>]*>\s*(.*?)</dd>", html, re.S).group(1)
    head = re.sub(r"<[^>]+>", "", head).strip()
    async with demo.transaction() as session:
        stored = await session.scalar(text("SELECT hash FROM consensus_records ORDER BY id DESC"))
    assert head == stored
    assert stored in page  # whole once the <wbr> breaks are read through
    assert f'href="/meetings/{party.counted}"' in html
    assert PRIVATE_QUESTION not in html
    assert "Meet every two months" in text_page

    await _sql(demo, "UPDATE consensus_records SET outcome = 'Meet weekly' WHERE id = 1")
    _response, broken = await _get(client, "/consensus")
    assert "The chain verifies" not in broken
    assert "The chain is broken: Entry 1 does not match its hash" in _main(broken)


async def test_petitions_show_their_progress_and_not_their_signers(client, demo):
    started = await petitions.start_petition(demo, CHLOE, PETITION_TITLE)
    await petitions.sign_petition(demo, BRYN, started.ref)
    view = await petitions.petition_status(demo, started.ref)
    threshold = view.progress.threshold
    _response, listed = await _get(client, "/petitions")
    assert f"<bdi>{PETITION_TITLE}</bdi>" in listed
    assert f"2 of {threshold} signatures" in _main(listed)
    _response, html = await _get(client, f"/petitions/{started.ref}")
    assert _title(html) == f"Petition {started.ref} – Harmony Party UK"
    page = _main(html)
    assert f"2 of {threshold} signatures" in page
    assert re.search(rf'<progress[^>]*max="{threshold}" value="2"', html)
    assert f"When {threshold} Members have signed, a Party Thing is called" in page
    for name in ("Chloe", "Bryn", CHLOE, BRYN):
        assert name not in html
    await _get(client, "/petitions/P-99", status=404)


async def test_hostile_text_is_escaped_and_isolated(client, demo):
    hostile = "<script>alert(1)</script> \u202eevil\u202c"
    ref = await prepared_moot(demo, wait_for_start=True)
    await roll_call.open_meeting(demo, ANA, ref)
    await debate.add_suggestion(demo, CHLOE, ref, hostile)
    await _sql(demo, "UPDATE meetings SET question = :q, place = :q", q=hostile)
    _response, html = await _get(client, f"/meetings/{ref}")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; \u202eevil\u202c"
    assert "<script>alert" not in html
    assert html.count(f"<bdi>{escaped}</bdi>") >= 3  # question, place, suggestion
    assert f"<title>{ref}: {escaped}" in html


async def test_hostile_option_names_in_the_chart_are_text(client, demo):
    ref, _receipts = await counted_vote(demo)
    async with demo.transaction() as session:
        round_ = await session.scalar(select(BallotRound))
        stored = json.dumps(round_.result).replace("Meet yearly", "<b>x</b>\u202e&")
        round_.result = json.loads(stored)
    _response, html = await _get(client, f"/meetings/{ref}/results")
    assert "<b>x</b>" not in html
    assert "<bdi>3. &lt;b&gt;x&lt;/b&gt;\u202e&amp;</bdi>" in html  # the table
    for svg in _svgs(html):  # still well-formed XML
        assert svg.get("role") == "img"


async def test_a_page_in_french(client, demo):
    ref = await debating(demo)
    response, html = await _get(client, f"/meetings/{ref}", lang="fr")
    assert '<html lang="fr" dir="ltr"' in html
    page = _main(html)
    assert "La réunion est en phase de débat." in page
    assert "Moot d'assemblée" in page
    assert re.search(r"\b\d+ novembre 2026\b", page)
    assert response.cookies["harmony_lang"].value == "fr"
