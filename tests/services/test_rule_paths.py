"""The rules as the services apply them, at their edges (issue 7: one-line mutants of the
services' rule paths that survived the suite). Each test names the mutant it kills;
docs/constitution.md ("Mutation testing") lists them.

Meetings are opened at their announced start time (the clock is moved there first), so
these tests hold whether or not opening early is allowed.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from harmony_matrix.constitution.eligibility import Status
from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.errors import InvalidInput, NotAllowed, NotFound, RuleViolation
from harmony_matrix.services import (
    debate,
    meetings,
    membership,
    paper_votes,
    petitions,
    preparation,
    registry,
    roll_call,
)
from harmony_matrix.services.lookup import meeting_by_ref
from harmony_matrix.services.membership import GENERAL_SECRETARY
from harmony_matrix.storage.models import (
    Assembly,
    AssemblyMembership,
    Attendance,
    AuditEvent,
    ConsensusRecord,
    Meeting,
    Office,
    Option,
    OptionSuggestion,
    OutboxMessage,
    Person,
    PetitionStatus,
    Suggestion,
)
from tests.conftest import read_english

from .helpers import (
    ANA,
    BRYN,
    CHLOE,
    DAS,
    DAWID,
    ELIF,
    FARAH,
    GWEN,
    IRIS,
    MEDIA,
    OUTSIDER_MEMBER,
    OUTSIDER_PARTICIPANT,
    OWG,
    prepared_moot,
    reach_petition,
    reached_before_auto_call,
    row_counts,
)

PLACE = {"online_url": "https://meet.example/harmony", "accessibility": "Captions"}


async def _open(ctx, clock, ref: str) -> None:
    """Open the meeting at its announced start time."""
    starts_at = (await meetings.meeting_summary(ctx, ref)).starts_at
    assert starts_at is not None
    clock.current = starts_at
    await roll_call.open_meeting(ctx, ANA, ref)


async def _set_person(ctx, matrix_id: str, **values) -> None:
    async with ctx.transaction() as session:
        person = await session.scalar(select(Person).where(Person.matrix_id == matrix_id))
        for name, value in values.items():
            setattr(person, name, value)


async def _members(ctx) -> list[str]:
    """The non-suspended Members, in register order."""
    async with ctx.transaction() as session:
        people = await session.scalars(select(Person).order_by(Person.id))
        return [
            p.matrix_id for p in people if p.status == Status.MEMBER and p.suspended_from is None
        ]


async def _reached_petition(ctx, originator: str = CHLOE) -> petitions.PetitionStatusView:
    """A petition signed by its originator and just enough Members to reach, as one that
    reached before petitions called their Party Thing themselves: the General Secretary
    calls it (the path ``meetings.call_party_thing`` keeps)."""
    view = await reached_before_auto_call(ctx, originator, leaving_out=(ANA,))
    assert view.status is PetitionStatus.REACHED
    return view


async def _audit_count(ctx, action: str) -> int:
    async with ctx.transaction() as session:
        return await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        )


# --- Quorum and the roll call ----------------------------------------------------------


async def test_an_attendee_suspended_during_the_meeting_stops_counting(demo, clock):
    """Kills dropping the `not_suspended` filter in `quorum_status`, and the SQL mirror
    of a suspension's start (`suspended_from > at` -> `>=`) and end
    (`suspended_until <= at` -> `<`)."""
    ref = await prepared_moot(demo)
    await _open(demo, clock, ref)
    for who in (ANA, CHLOE, GWEN, ELIF):
        status = await roll_call.record_attendance(demo, who, ref)
    assert status.reached and status.assemblies[0].present == 4
    # Suspended from this very moment: no longer counted.
    await _set_person(demo, GWEN, suspended_from=clock())
    status = await roll_call.meeting_quorum(demo, ref)
    assert (status.attendees, status.assemblies[0].present, status.reached) == (3, 3, False)
    # A suspension that ends at this very moment is over: counted again.
    await _set_person(
        demo, GWEN, suspended_from=clock() - timedelta(days=1), suspended_until=clock()
    )
    status = await roll_call.meeting_quorum(demo, ref)
    assert (status.attendees, status.assemblies[0].present, status.reached) == (4, 4, True)


async def test_a_moot_does_not_need_its_caller_present(demo, clock):
    """Kills `or` -> `and` in `originator_present`: only a petition's originator must be
    present; a Moot's caller may stay away."""
    ref = await prepared_moot(demo, slug=OWG)  # 38 active members: quorum 6
    await _open(demo, clock, ref)
    for who in (BRYN, CHLOE, DAWID, FARAH, GWEN, OUTSIDER_MEMBER):
        status = await roll_call.record_attendance(demo, who, ref)
    assert status.reached
    await debate.start_debate(demo, ANA, ref)
    await debate.add_option(demo, ANA, ref, "Yes")
    assert (await debate.end_debate(demo, ANA, ref)).phase is Phase.CONSENSUS
    async with demo.transaction() as session:
        record = await session.scalar(select(ConsensusRecord))
        assert (await session.get(Person, record.recorded_by_id)).matrix_id == ANA


async def test_no_roll_call_while_planning_or_after_the_end(demo, clock):
    """Kills the roll call allowed while planning (or once the meeting has finished)."""
    ref = await prepared_moot(demo)
    before = await row_counts(demo)
    with pytest.raises(RuleViolation, match="in progress"):
        await roll_call.record_attendance(demo, CHLOE, ref)
    with pytest.raises(RuleViolation, match="in progress"):
        await roll_call.record_attendance(demo, ANA, ref, who=CHLOE)
    assert await row_counts(demo) == before
    await meetings.cancel_meeting(demo, ANA, ref, "Not needed")
    with pytest.raises(RuleViolation, match="in progress"):
        await roll_call.record_attendance(demo, CHLOE, ref)


async def test_an_outsider_participant_makes_no_suggestion(demo, clock):
    """Kills the `may_take_part` check dropped from `add_suggestion`."""
    ref = await prepared_moot(demo)
    await _open(demo, clock, ref)
    before = await row_counts(demo)
    with pytest.raises(NotAllowed, match="eligible"):
        await debate.add_suggestion(demo, OUTSIDER_PARTICIPANT, ref, "Let me in")
    with pytest.raises(NotAllowed, match="eligible"):
        await debate.add_suggestion(demo, ANA, ref, "Theirs", author=OUTSIDER_PARTICIPANT)
    assert await row_counts(demo) == before
    # An interested Member from outside the assembly, and a participant of it, may.
    assert await debate.add_suggestion(demo, OUTSIDER_MEMBER, ref, "Mine") == 1
    assert await debate.add_suggestion(demo, ANA, ref, "Elif's", author=ELIF) == 2
    async with demo.transaction() as session:
        people = {p.id: p.matrix_id for p in await session.scalars(select(Person))}
        rows = await session.scalars(select(Suggestion).order_by(Suggestion.number))
        assert [(people[r.author_id], people[r.recorded_by_id]) for r in rows] == [
            (OUTSIDER_MEMBER, OUTSIDER_MEMBER),
            (ELIF, ANA),
        ]
    # Nobody writes down a suggestion for someone suspended.
    with pytest.raises(NotAllowed, match="suspended"):
        await debate.add_suggestion(demo, ANA, ref, "Iris's", author=IRIS)


async def test_a_moderator_writes_down_a_suggestion_for_someone(demo, clock):
    """Kills `moderators_too` dropped from `add_suggestion`'s organiser check."""
    ref = await prepared_moot(demo, slug=OWG)
    await _open(demo, clock, ref)
    assert await debate.add_suggestion(demo, BRYN, ref, "Gwen's idea", author=GWEN) == 1


# --- Phases in the services ------------------------------------------------------------


async def test_no_debate_restart_and_no_preparation_during_the_vote(demo, clock):
    """Kills `start_debate` accepted from the vote, and preparation recorded during it."""
    ref = await prepared_moot(demo)
    await _open(demo, clock, ref)
    for who in (ANA, CHLOE, GWEN, ELIF):
        await roll_call.record_attendance(demo, who, ref)
    with pytest.raises(RuleViolation, match="debate"):
        await debate.end_debate(demo, ANA, ref)  # still discussing
    await debate.start_debate(demo, ANA, ref)
    with pytest.raises(RuleViolation, match="after the discussion"):
        await debate.start_debate(demo, ANA, ref)
    await preparation.record_preparation(demo, ANA, ref, PreparationStep.MATERIALS, "More")
    await debate.add_option(demo, ANA, ref, "Yes")
    await debate.add_option(demo, ANA, ref, "No")
    assert (await debate.end_debate(demo, ANA, ref)).phase is Phase.VOTE
    before = await row_counts(demo)
    with pytest.raises(RuleViolation, match="after the discussion"):
        await debate.start_debate(demo, ANA, ref)
    with pytest.raises(RuleViolation, match="before the vote"):
        await preparation.record_preparation(demo, ANA, ref, PreparationStep.FACTS, "Late")
    with pytest.raises(RuleViolation, match="during the debate"):
        await debate.add_option(demo, ANA, ref, "Maybe")
    assert await row_counts(demo) == before
    assert (await meetings.meeting_summary(demo, ref)).phase is Phase.VOTE


async def test_no_rescheduling_during_the_debate_or_the_vote(demo, clock):
    """Kills rescheduling allowed during the first debate or the vote (the continuation
    test `phase is DEBATE and vote_round >= 1` loosened), and the continuation refused
    after a vote with no clear winner (`>= 1` -> `> 1`)."""
    ref = await prepared_moot(demo)
    await _open(demo, clock, ref)
    for who in (ANA, CHLOE, GWEN, ELIF):
        await roll_call.record_attendance(demo, who, ref)
    await debate.start_debate(demo, ANA, ref)
    later = clock() + timedelta(days=3)
    with pytest.raises(RuleViolation, match="no clear winner"):
        await preparation.schedule(demo, ANA, ref, later, **PLACE)
    await debate.add_option(demo, ANA, ref, "Yes")
    await debate.add_option(demo, ANA, ref, "No")
    await debate.end_debate(demo, ANA, ref)
    with pytest.raises(RuleViolation, match="no clear winner"):
        await preparation.schedule(demo, ANA, ref, later, **PLACE)
    await paper_votes.enter_paper_vote(demo, ANA, ref, b"Yes,No\n5,0\n0,5\n")  # a tie
    # Back in debate after a vote: the meeting may continue on another day.
    result = await preparation.schedule(demo, ANA, ref, later, reason="Time to read", **PLACE)
    assert result.meeting.starts_at == later and result.check.limit_days is None


# --- Scheduling ------------------------------------------------------------------------


async def test_a_start_time_equal_to_now_is_refused(demo, clock):
    """Kills `starts_at <= now` -> `<` in `schedule`."""
    called = await meetings.call_moot(demo, ANA, MEDIA, "Q?")
    clock.advance(hours=1)  # later than the trigger, so only "in the future" can refuse
    with pytest.raises(RuleViolation, match="future"):
        await preparation.schedule(demo, ANA, called.ref, clock(), **PLACE)
    soon = clock() + timedelta(minutes=1)
    assert (await preparation.schedule(demo, ANA, called.ref, soon, **PLACE)).meeting.starts_at


async def test_a_reason_is_stored_and_published_only_when_needed(demo, clock):
    """Kills the reason stored (and sent out) when the date is within the limit."""
    called = await meetings.call_moot(demo, ANA, MEDIA, "Q?")
    within = clock() + timedelta(days=14)
    result = await preparation.schedule(
        demo, ANA, called.ref, within, reason="Because we can", **PLACE
    )
    assert not result.check.explanation_required
    async with demo.transaction() as session:
        meeting = await meeting_by_ref(session, called.ref)
        assert meeting.schedule_explanation == ""
        text = preparation.invitation(meeting, demo).render("en")
    assert "Because we can" not in text
    assert await _audit_count(demo, "meeting.schedule") == 1
    beyond = clock() + timedelta(days=15)
    await preparation.schedule(demo, ANA, called.ref, beyond, reason=" Hall closed ", **PLACE)
    async with demo.transaction() as session:
        meeting = await meeting_by_ref(session, called.ref)
        assert meeting.schedule_explanation == "Hall closed"


async def test_a_party_things_planning_counts_from_its_petition_reaching(demo, clock):
    """Kills a Party Thing's planning counted from the call instead of from the moment
    its petition reached the threshold: here the call comes five days later."""
    view = await _reached_petition(demo)
    reached_at = clock()
    clock.advance(days=5)
    thing = await meetings.call_party_thing(demo, ANA, view.ref)
    async with demo.transaction() as session:
        assert (await meeting_by_ref(session, thing.ref)).planning_triggered_at == reached_at
    with pytest.raises(RuleViolation, match="22 days"):
        await preparation.schedule(demo, ANA, thing.ref, reached_at + timedelta(days=22), **PLACE)
    result = await preparation.schedule(
        demo, ANA, thing.ref, reached_at + timedelta(days=21), **PLACE
    )
    assert result.check.days_after_trigger == 21 and not result.check.explanation_required


async def test_the_originators_unavailable_day_is_the_partys_local_day(demo, clock):
    """Kills the originator's unavailable day worked out in UTC instead of the party's
    timezone: in Tokyo (UTC+9), 16:00 UTC is already the next day."""
    demo.party = replace(demo.party, timezone="Asia/Tokyo")
    view = await _reached_petition(demo)
    thing = await meetings.call_party_thing(demo, ANA, view.ref)
    assert await preparation.declare_unavailable(demo, CHLOE, ["2026-11-10"]) == 1
    before = await row_counts(demo)
    for utc_moment in (
        datetime(2026, 11, 9, 16, 0, tzinfo=UTC),  # 01:00 on the 10th in Tokyo
        datetime(2026, 11, 10, 14, 0, tzinfo=UTC),  # 23:00 on the 10th in Tokyo
    ):
        with pytest.raises(RuleViolation, match="originator"):
            await preparation.schedule(demo, ANA, thing.ref, utc_moment, **PLACE)
    assert await row_counts(demo) == before
    # 15:00 UTC on the 10th is 00:00 on the 11th in Tokyo: she can come.
    fine = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)
    assert (await preparation.schedule(demo, ANA, thing.ref, fine, **PLACE)).meeting.starts_at


# --- Petitions -------------------------------------------------------------------------


async def test_a_signature_after_reaching_keeps_the_moment_it_reached(demo, clock):
    """Kills `reached_at` reset (and the General Secretary told again) by a signature
    after the petition reached its threshold."""
    view = await _reached_petition(demo)
    reached_at = view.reached_at
    assert reached_at == clock()
    clock.advance(days=2)
    later = await petitions.sign_petition(demo, OUTSIDER_MEMBER, view.ref)
    assert later.reached_at == reached_at and later.status is PetitionStatus.REACHED
    assert later.progress.signatures == view.progress.signatures + 1
    assert await _audit_count(demo, "petition.reached") == 1


async def test_a_signer_who_became_a_participant_stops_counting(demo, clock):
    """Kills the `Person.status == MEMBER` filter dropped from the signature count."""
    view = await petitions.start_petition(demo, CHLOE, "A petition")
    view = await petitions.sign_petition(demo, GWEN, view.ref)
    assert view.progress.signatures == 2
    await _set_person(demo, GWEN, status=Status.PARTICIPANT)
    assert (await petitions.petition_status(demo, view.ref)).progress.signatures == 1


async def test_a_closed_petition_cannot_be_signed(demo, clock):
    """Kills the closed check dropped from `sign_petition`."""
    view = await _reached_petition(demo)
    await meetings.call_party_thing(demo, ANA, view.ref)
    before = await row_counts(demo)
    with pytest.raises(RuleViolation, match="closed"):
        await petitions.sign_petition(demo, OUTSIDER_MEMBER, view.ref)
    assert await row_counts(demo) == before
    assert (await petitions.petition_status(demo, view.ref)).status is PetitionStatus.CLOSED


# --- Activity window -------------------------------------------------------------------


async def test_the_activity_window_includes_its_first_day(demo, clock):
    """Kills `last_active_at >= since` -> `>`: someone last active exactly 90 days ago
    still counts; a moment later they do not."""
    from harmony_matrix.demo import DEMO_ACTIVITY_AGE

    window = timedelta(days=demo.rules.active_days)
    clock.current = clock() - DEMO_ACTIVITY_AGE + window
    on_edge = await registry.assembly_quorum(demo, MEDIA)
    assert on_edge.quorum.active_population == 4  # Ana, Chloé, Elif, Gwen (Iris suspended)
    clock.advance(microseconds=1)
    assert (await registry.assembly_quorum(demo, MEDIA)).quorum.active_population == 0
    # With no window (0 days), every non-suspended member counts.
    demo.rules = replace(demo.rules, active_days=0)
    assert (await registry.assembly_quorum(demo, MEDIA)).quorum.active_population == 4


# --- Membership and office in time -----------------------------------------------------


async def test_a_membership_runs_from_its_start_to_its_end(demo, clock):
    """Kills `since <= at` -> `<` and `until > at` -> `>=` in `_current`: someone added
    this very moment is a member; a membership that ends this very moment is over."""
    ref = await prepared_moot(demo)
    await registry.add_to_assembly(demo, ANA, MEDIA, OUTSIDER_PARTICIPANT)
    assert await _may_take_part(demo, ref, OUTSIDER_PARTICIPANT)
    async with demo.transaction() as session:
        membership = await session.scalar(
            select(AssemblyMembership)
            .join(Person, Person.id == AssemblyMembership.person_id)
            .where(Person.matrix_id == OUTSIDER_PARTICIPANT)
        )
        membership.until = clock()
    assert not await _may_take_part(demo, ref, OUTSIDER_PARTICIPANT)


async def test_an_office_runs_from_its_start_to_its_end(demo, clock):
    """Kills `Office.since <= at` -> `<` and `Office.until > at` -> `>=` (in
    `holds_office` and `office_holders`): the General Secretary appointed this very
    moment may act and is told of a petition; one whose office ends now is not."""
    async with demo.transaction() as session:
        office = await session.scalar(
            select(Office)
            .join(Person, Person.id == Office.person_id)
            .where(Person.matrix_id == ANA)
        )
        office.since = clock()
    async with demo.transaction() as session:
        ana = await session.scalar(select(Person).where(Person.matrix_id == ANA))
        assert await membership.holds_office(session, ana.id, GENERAL_SECRETARY, clock())
        holders = await membership.office_holders(session, GENERAL_SECRETARY, clock())
        assert [p.matrix_id for p in holders] == [ANA]
        office = await session.scalar(select(Office).where(Office.person_id == ana.id))
        office.until = clock()
    async with demo.transaction() as session:
        assert not await membership.holds_office(session, ana.id, GENERAL_SECRETARY, clock())
        assert await membership.office_holders(session, GENERAL_SECRETARY, clock()) == []
    with pytest.raises(NotAllowed):
        await meetings.call_party_thing(demo, ANA, "P-1")


async def _may_take_part(ctx, ref: str, matrix_id: str) -> bool:
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, ref)
        person = await session.scalar(select(Person).where(Person.matrix_id == matrix_id))
        return await roll_call.may_take_part(session, meeting, person, ctx.now())


async def test_an_unavailable_day_is_each_persons_own(demo, clock):
    """Kills the `person_id` filter dropped (or inverted) in `declare_unavailable`: a day
    someone else declared is still new for this person."""
    assert await preparation.declare_unavailable(demo, CHLOE, ["2026-11-10"]) == 1
    assert await preparation.declare_unavailable(demo, GWEN, ["2026-11-10", "2026-11-11"]) == 2
    assert await preparation.declare_unavailable(demo, GWEN, ["2026-11-11", "2026-11-12"]) == 1
    assert await preparation.declare_unavailable(demo, CHLOE, ["2026-11-10"]) == 0


async def test_the_published_reason_reads_as_one_notice(demo, clock):
    """Kills the notice's parts joined with another separator."""
    await read_english(demo)
    called = await meetings.call_moot(demo, ANA, MEDIA, "Q?")
    beyond = clock() + timedelta(days=15)
    await preparation.schedule(demo, ANA, called.ref, beyond, reason="Hall closed", **PLACE)
    async with demo.transaction() as session:
        body = await session.scalar(
            select(OutboxMessage.body).where(OutboxMessage.destination == GWEN)
        )
    assert body == (
        f"{called.ref} is set 15 days after its planning began. The usual limit is 14 days. "
        "The reason given: \u2068Hall closed\u2069"
    )


# --- Options, petitions' meetings, roles and offices -------------------------------------


async def test_options_belong_to_their_meeting_and_a_moderator_merges_them(demo, clock):
    """Kills `active_option` looking up an option of another meeting, and `merge_options`
    refusing moderators (`moderators_too` dropped) or forgetting who made the option."""
    first = await prepared_moot(demo, slug=OWG)
    second = await prepared_moot(demo, slug=OWG)
    for ref in (first, second):
        await _open(demo, clock, ref)
        await debate.start_debate(demo, ANA, ref)
        await debate.add_option(demo, ANA, ref, f"Yes ({ref})")
        await debate.add_option(demo, ANA, ref, f"No ({ref})")
    # Suggestions belong to their meeting too, and an option links the one it names.
    await debate.add_suggestion(demo, CHLOE, first, "Print")
    await debate.add_suggestion(demo, GWEN, first, "Email")
    with pytest.raises(NotFound, match="no suggestion 1"):
        await debate.add_option(demo, ANA, second, "Print", suggestions=[1])
    await debate.withdraw_option(demo, BRYN, second, 1)
    assert [o.number for o in await debate.active_options(demo, first)] == [1, 2]
    assert [o.number for o in await debate.active_options(demo, second)] == [2]
    # Bryn moderates the OWG: he may merge, and the new option is his.
    assert await debate.merge_options(demo, BRYN, first, [1, 2], "Maybe") == 3
    async with demo.transaction() as session:
        bryn = await session.scalar(select(Person).where(Person.matrix_id == BRYN))
        merged = await session.scalar(
            select(Option).join(Meeting).where(Meeting.id == 1, Option.number == 3)
        )
        assert merged.created_by_id == bryn.id
    assert await debate.add_option(demo, ANA, first, "Email it", suggestions=[2]) == 4
    assert await debate.add_option(demo, None, first, "The operator's") == 5
    async with demo.transaction() as session:
        ana = await session.scalar(select(Person).where(Person.matrix_id == ANA))
        rows = await session.execute(
            select(Option.number, Option.created_by_id).where(Option.meeting_id == 1)
        )
        assert dict(rows.all()) == {1: ana.id, 2: ana.id, 3: bryn.id, 4: ana.id, 5: None}
        linked = await session.scalar(
            select(Suggestion.text)
            .join(OptionSuggestion, OptionSuggestion.suggestion_id == Suggestion.id)
            .join(Option, Option.id == OptionSuggestion.option_id)
            .where(Option.meeting_id == 1, Option.number == 4)
        )
        assert linked == "Email"


async def test_a_party_thing_is_linked_to_its_petition_and_its_caller(demo, clock):
    """Kills `call_party_thing` forgetting the petition or the caller, and its "already
    called" check looking at other meetings (`==` -> `!=`)."""
    other = await _reached_petition(demo, originator=GWEN)
    await meetings.call_party_thing(demo, ANA, other.ref)  # another petition's Party Thing
    view = await _reached_petition(demo)
    thing = await meetings.call_party_thing(demo, ANA, view.ref)
    async with demo.transaction() as session:
        meeting = await meeting_by_ref(session, thing.ref)
        ana = await session.scalar(select(Person).where(Person.matrix_id == ANA))
        chloe = await session.scalar(select(Person).where(Person.matrix_id == CHLOE))
        assert (meeting.petition_id, meeting.called_by_id, meeting.originator_id) == (
            int(view.ref.removeprefix("P-")),
            ana.id,
            chloe.id,
        )


async def test_a_former_secretary_is_no_organiser(demo, clock):
    """Kills `_current` dropped from `roles_in`: a role that has ended gives no right."""
    assert await meetings.call_moot(demo, CHLOE, DAS, "While secretary")
    async with demo.transaction() as session:
        for row in await session.scalars(
            select(AssemblyMembership)
            .join(Person, Person.id == AssemblyMembership.person_id)
            .where(Person.matrix_id == CHLOE)
        ):
            row.until = clock()
    with pytest.raises(NotAllowed, match="Only a member of Disability Activism Society"):
        await meetings.call_moot(demo, CHLOE, DAS, "No longer")


async def test_only_the_current_general_secretary_is_told_of_a_petition(demo, clock):
    """Kills `office_holders` ignoring the office's title or its start."""
    async with demo.transaction() as session:
        people = {p.matrix_id: p for p in await session.scalars(select(Person))}
        session.add(Office(title="treasurer", person_id=people[GWEN].id, since=clock()))
        session.add(
            Office(
                title=GENERAL_SECRETARY,
                person_id=people[FARAH].id,
                since=clock() + timedelta(days=1),
            )
        )
    async with demo.transaction() as session:
        holders = await membership.office_holders(session, GENERAL_SECRETARY, clock())
    assert [p.matrix_id for p in holders] == [ANA]
    view = await reach_petition(demo, leaving_out=(ANA,))
    async with demo.transaction() as session:
        told = set(
            await session.execute(
                select(OutboxMessage.destination, OutboxMessage.is_direct).where(
                    OutboxMessage.body.contains(view.ref)
                )
            )
        )
    assert told == {(ANA, True)}


async def test_a_title_of_the_longest_length_is_accepted(demo, clock):
    """Kills `len(title) > MAX_TITLE` -> `>=`."""
    longest = "x" * petitions.MAX_TITLE
    assert (await petitions.start_petition(demo, CHLOE, longest)).title == longest
    with pytest.raises(InvalidInput, match="too long"):
        await petitions.start_petition(demo, CHLOE, longest + "x")


async def test_signing_one_petition_does_not_count_as_signing_another(demo, clock):
    """Kills the "already signed" check looking at the signer's other petitions."""
    first = await petitions.start_petition(demo, CHLOE, "First")
    second = await petitions.start_petition(demo, GWEN, "Second")
    assert (await petitions.sign_petition(demo, CHLOE, second.ref)).progress.signatures == 2
    assert (await petitions.sign_petition(demo, GWEN, first.ref)).progress.signatures == 2


async def test_a_petitions_status_shows_what_it_asks_and_when_it_opened(demo, clock):
    """Kills the status view losing the petition's title or opening time."""
    opened = clock()
    clock.advance(hours=2)
    view = await petitions.start_petition(demo, CHLOE, "Adopt a new logo")
    clock.advance(hours=1)
    status = await petitions.petition_status(demo, view.ref)
    assert (status.title, status.opened_at) == ("Adopt a new logo", opened + timedelta(hours=2))


async def test_the_originator_must_be_present_at_this_meeting(demo, clock):
    """Kills `originator_present` finding the originator's attendance at another meeting."""
    moot = await prepared_moot(demo)
    await _open(demo, clock, moot)
    await roll_call.record_attendance(demo, CHLOE, moot)  # Chloé, at another meeting
    view = await _reached_petition(demo)
    thing = (await meetings.call_party_thing(demo, ANA, view.ref)).ref
    await preparation.schedule(demo, ANA, thing, clock() + timedelta(days=2), **PLACE)
    for step in (PreparationStep.FACTS, PreparationStep.MATERIALS):
        await preparation.record_preparation(demo, ANA, thing, step, "Ready")
    await preparation.notify(demo, ANA, thing)
    await _open(demo, clock, thing)
    await roll_call.record_attendance(demo, ANA, thing)
    await debate.start_debate(demo, ANA, thing)
    await debate.add_option(demo, ANA, thing, "Yes")
    with pytest.raises(RuleViolation, match="originator"):
        await debate.end_debate(demo, ANA, thing)
    await roll_call.record_attendance(demo, CHLOE, thing)
    assert (await debate.end_debate(demo, ANA, thing)).phase is Phase.CONSENSUS


async def test_an_assemblys_own_quorum_is_its_share_of_its_active_members(demo, clock):
    """Kills `own_quorum_share` reading the assembly's percent wrongly."""
    async with demo.transaction() as session:
        owg = await session.scalar(select(Assembly).where(Assembly.slug == OWG))
        owg.own_quorum_percent = 50
    found = await registry.assembly_quorum(demo, OWG)
    assert found.quorum.needed == 19  # 50% of 38
    assert "own quorum of 50% of 38 active members" in found.quorum.basis.render("en")


async def test_the_roll_call_records_who_recorded_whom_once(demo, clock):
    """Kills the roll call's "already present" check dropped, the recorder lost, a
    moderator refused, the operator refused, and a past suspension misread."""
    ref = await prepared_moot(demo, slug=OWG)
    # Gwen's suspension ended before the meeting.
    await _set_person(
        demo, GWEN, suspended_from=clock() - timedelta(days=30), suspended_until=clock()
    )
    await _open(demo, clock, ref)
    await roll_call.record_attendance(demo, GWEN, ref)
    await roll_call.record_attendance(demo, GWEN, ref)  # twice: recorded once
    await roll_call.record_attendance(demo, BRYN, ref, who=CHLOE)  # the moderator
    status = await roll_call.record_attendance(demo, None, ref, who=FARAH)  # the operator
    assert (status.meeting_ref, status.attendees) == (ref, 3)
    assert status.assemblies[0].name == "Operational Working Group"
    async with demo.transaction() as session:
        people = {p.id: p.matrix_id for p in await session.scalars(select(Person))}
        rows = await session.execute(select(Attendance.person_id, Attendance.recorded_by_id))
        assert sorted((people[a], people.get(b)) for a, b in rows.all()) == [
            (CHLOE, BRYN),
            (FARAH, None),
            (GWEN, GWEN),
        ]
    assert await _audit_count(demo, "meeting.attend") == 3


async def test_before_opening_the_quorum_is_counted_live(demo, clock):
    """Kills `quorum_status` miscounting an unopened meeting's active population, or
    ignoring the assembly's own quorum."""
    ref = await prepared_moot(demo, slug=OWG)
    async with demo.transaction() as session:
        owg = await session.scalar(select(Assembly).where(Assembly.slug == OWG))
        owg.own_quorum_percent = 50
    status = await roll_call.meeting_quorum(demo, ref)
    assert (status.assemblies[0].quorum.active_population, status.assemblies[0].quorum.needed) == (
        38,
        19,
    )
    await _open(demo, clock, ref)
    assert (await roll_call.meeting_quorum(demo, ref)).assemblies[0].quorum.needed == 19


async def test_a_text_of_the_longest_length_is_accepted(demo, clock):
    """Kills `len(text) > MAX_TEXT` -> `>=` in `check_text`."""
    ref = await prepared_moot(demo)
    await _open(demo, clock, ref)
    assert await debate.add_suggestion(demo, CHLOE, ref, "x" * meetings.MAX_TEXT) == 1
    with pytest.raises(InvalidInput, match="too long"):
        await debate.add_suggestion(demo, CHLOE, ref, "x" * (meetings.MAX_TEXT + 1))
