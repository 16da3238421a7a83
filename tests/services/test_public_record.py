"""What the public may read: public assemblies only, meetings with their preparation,
suggestions and options, results only once counted, petitions by their count, and the
record of consensus with its chain check."""

import pytest
from sqlalchemy import text

from harmony_matrix.constitution.process import Phase
from harmony_matrix.errors import InvalidInput, NotFound
from harmony_matrix.services import ballots, meetings, public_record
from harmony_matrix.storage.models import OptionStatus
from tests.companion.public_data import (
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
from tests.services.helpers import ANA, MEDIA, OWG, reach_petition


async def _sql(ctx, statement, **params):
    async with ctx.transaction() as session:
        await session.execute(text(statement), params)


async def test_only_public_assemblies_are_listed(demo):
    listed = await public_record.public_assemblies(demo)
    slugs = [a.slug for a in listed]
    assert OWG in slugs and MEDIA in slugs
    assert PRIVATE not in slugs
    assert [a.name for a in listed] == sorted(a.name for a in listed)


async def test_a_private_assembly_is_not_found_in_the_same_words_as_a_missing_one(demo):
    with pytest.raises(NotFound) as private:
        await public_record.assembly_page(demo, PRIVATE)
    await _sql(demo, "UPDATE assemblies SET slug = 'renamed' WHERE slug = :s", s=PRIVATE)
    with pytest.raises(NotFound) as missing:
        await public_record.assembly_page(demo, PRIVATE)
    assert private.value.message == missing.value.message


async def test_a_private_assembly_with_a_public_ones_name_changes_nothing(demo):
    """Found by name, a public assembly's page is the same whether or not a private
    assembly shares its name (which would otherwise tell that the private one exists)."""
    page = await public_record.assembly_page(demo, "operational working group")
    await _sql(
        demo, "UPDATE assemblies SET name = 'Operational Working Group' WHERE slug = :s", s=PRIVATE
    )
    assert await public_record.assembly_page(demo, "operational working group") == page
    assert (await public_record.assembly_page(demo, OWG)).slug == OWG


async def test_the_assembly_page_has_what_the_seed_shows(demo):
    page = await public_record.assembly_page(demo, OWG)
    assert page.name == "Operational Working Group"
    assert page.subtitle == "Helping Harmony work (and play!)"
    assert page.reference == "HPUK-ASSE-2025-09-4"
    assert page.about_paragraphs[0].startswith("This umbrella assembly is responsible")
    assert len(page.about_paragraphs) == 7
    assert page.purpose.startswith("This assembly maintains the constitution")
    assert (
        page.composition == "All Harmony participants are automatically a member of this assembly."
    )
    assert page.parent is None
    assert [m.slug for m in page.members] == ["harmony-rec"]
    media = await public_record.assembly_page(demo, MEDIA)
    assert media.parent is not None and media.parent.slug == "presentation-of-policy"


async def test_a_private_parent_or_member_assembly_is_not_named(demo):
    await _sql(
        demo,
        "UPDATE assemblies SET parent_id = (SELECT id FROM assemblies WHERE slug = :owg) "
        "WHERE slug = :private",
        owg=OWG,
        private=PRIVATE,
    )
    page = await public_record.assembly_page(demo, OWG)
    assert PRIVATE not in [m.slug for m in page.members]


async def test_meetings_are_upcoming_or_past_and_decisions_newest_first(demo):
    ref, _receipts = await counted_vote(demo)
    planned = await meetings.call_moot(demo, ANA, OWG, PLANNED_QUESTION)
    page = await public_record.assembly_page(demo, OWG)
    assert [m.ref for m in page.upcoming] == [planned.ref]
    assert page.upcoming[0].phase is Phase.PLANNING
    assert [(m.ref, m.phase) for m in page.past] == [(ref, Phase.CONSENSUS)]
    assert [(d.meeting_ref, d.outcome) for d in page.decisions] == [(ref, "Meet every two months")]


async def test_the_meeting_page_has_preparation_suggestions_and_merged_options(demo):
    ref = await debating(demo)
    page = await public_record.meeting_page(demo, ref)
    assert page.phase is Phase.DEBATE
    assert [a.slug for a in page.assemblies] == [MEDIA]
    assert page.place == "Community Hall, 1 High St"
    assert page.online_href == "https://meet.example/harmony"
    assert page.accessibility.startswith("Step-free entrance")
    assert [n.note for n in page.facts] == ["Survey results"]
    assert [n.note for n in page.materials] == ["Slides, large print copies"]
    assert [(s.number, s.text) for s in page.suggestions] == [
        (1, "Print it in large type"),
        (2, "Send it by email"),
    ]
    assert [(o.number, o.status, o.merged_into, o.suggestions) for o in page.options] == [
        (1, OptionStatus.MERGED, 3, (1,)),
        (2, OptionStatus.MERGED, 3, (2,)),
        (3, OptionStatus.ACTIVE, None, ()),
        (4, OptionStatus.ACTIVE, None, ()),
    ]
    assert page.has_calendar and not page.has_ballot
    assert page.calendar_file == f"{ref}.ics"


@pytest.mark.parametrize(
    ("url", "href"),
    [
        ("https://meet.example/x", "https://meet.example/x"),
        ("javascript:alert(1)", None),
        ("JAVASCRIPT:alert(1)", None),
        ("meet.example/x", None),
        ("https://meet.example/x y", None),
    ],
)
def test_only_a_web_address_becomes_a_link(url, href):
    page = public_record.MeetingPage(
        **{name: None for name in public_record.MeetingPage.__dataclass_fields__}
        | {"online_url": url}
    )
    assert page.online_href == href


async def test_a_meeting_of_a_private_assembly_only_does_not_exist_for_the_public(demo):
    ref = await private_decision(demo)
    for read in (
        public_record.meeting_page,
        public_record.results_page,
        public_record.public_ballots,
    ):
        with pytest.raises(NotFound) as hidden:
            await read(demo, ref)
        with pytest.raises(NotFound) as missing:
            await read(demo, "M-999")
        assert hidden.value.message.msgid == missing.value.message.msgid
    with pytest.raises(NotFound):
        await public_record.meeting_calendar_file(demo, ref, "en")


async def test_an_undated_meeting_has_no_calendar_file(demo):
    planned = await meetings.call_moot(demo, ANA, OWG, PLANNED_QUESTION)
    with pytest.raises(NotFound):
        await public_record.meeting_calendar_file(demo, planned.ref, "en")


async def test_the_results_of_a_counted_vote(demo):
    ref, _receipts = await counted_vote(demo)
    page = await public_record.results_page(demo, ref)
    (round_,) = page.rounds
    assert round_.counted and not round_.is_open
    assert {s.label: s.value for s in round_.totals} == TOTALS
    assert [(s.label, s.value) for s in round_.runoff] == [(WINNER, 5), ("1. Meet monthly", 4)]
    assert round_.runoff_equal == 0
    assert round_.winner == WINNER
    assert (round_.cast, round_.eligible, round_.turnout_share) == (9, 9, 1.0)
    assert round_.turnout.render("en") == "9 of 9 people voted."
    explained = [step.render("en") for step in round_.steps]
    assert explained[-1] == f"\u2068{WINNER}\u2069 is the winner."  # isolated
    assert page.has_published_ballots


async def test_an_open_vote_shows_its_turnout_and_nothing_else(demo):
    ref = await open_vote(demo)
    (round_,) = (await public_record.results_page(demo, ref)).rounds
    assert round_.is_open and not round_.counted
    assert (round_.cast, round_.eligible) == (2, 9)
    assert round_.totals == () and round_.runoff == () and round_.winner is None
    assert round_.steps == ()
    with pytest.raises(NotFound):
        await public_record.public_ballots(demo, ref)
    with pytest.raises(NotFound):
        await public_record.public_ballots(demo, ref, 1)


async def test_published_ballots_are_the_ballot_box_s_own(demo):
    ref, receipts = await counted_vote(demo)
    found = await public_record.public_ballots(demo, ref)
    assert found.csv == await ballots.published_ballots(demo, ref)
    assert sorted(line.split(",")[0] for line in found.csv.splitlines()[1:]) == sorted(receipts)
    assert found.name == f"{ref}-ballots.csv"
    assert (await public_record.public_ballots(demo, ref, 1)).csv == found.csv
    with pytest.raises(NotFound):
        await public_record.public_ballots(demo, ref, 2)


async def test_petitions_show_their_count_and_threshold(demo):
    reached = await reach_petition(demo)
    listed = await public_record.all_petitions(demo)
    assert [p.ref for p in listed] == [reached.ref]
    view = await public_record.petition_page(demo, reached.ref)
    text = public_record.signatures_of_threshold(view).render("en")
    assert text == f"{view.progress.signatures} of {view.progress.threshold} signatures"
    assert view.party_thing_ref is not None
    explained = public_record.threshold_explained(view).render("en")
    assert f"When {view.progress.threshold} Members have signed" in explained
    with pytest.raises(InvalidInput):
        await public_record.petition_page(demo, "nonsense")
    with pytest.raises(NotFound):
        await public_record.petition_page(demo, "P-99")


async def test_the_record_of_consensus_hides_private_decisions_but_verifies_them(demo):
    party = await public_party(demo)
    page = await public_record.consensus_page(demo)
    assert [e.meeting_ref for e in page.entries] == [party.counted]
    assert PRIVATE_QUESTION not in [e.question for e in page.entries]
    assert page.check.count == 2 and page.hidden == 1
    assert page.check.intact
    assert page.check.head != page.entries[0].hash  # the private entry is the head


async def test_a_broken_chain_is_reported(demo):
    await counted_vote(demo)
    await _sql(demo, "UPDATE consensus_records SET outcome = 'Meet weekly'")
    page = await public_record.consensus_page(demo)
    assert not page.check.intact
    assert page.check.broken == 1
