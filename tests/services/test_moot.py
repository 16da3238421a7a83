"""A whole Assembly Moot, run through the services as the bot and the web will."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.errors import InvalidInput, NotAllowed, NotFound, RuleViolation
from harmony_matrix.services import (
    consensus,
    debate,
    meetings,
    paper_votes,
    preparation,
    registry,
    roll_call,
)
from harmony_matrix.storage.models import (
    AuditEvent,
    ConsensusMethod,
    ConsensusRecord,
    Option,
    OptionStatus,
    OptionSuggestion,
    OutboxMessage,
    Person,
)

from .helpers import (
    ANA,
    BRYN,
    CHLOE,
    ELIF,
    GWEN,
    IRIS,
    MEDIA,
    OUTSIDER_MEMBER,
    OUTSIDER_PARTICIPANT,
    prepared_moot,
    row_counts,
    to_start,
)


async def test_a_whole_moot_from_call_to_consensus(demo):
    ctx = demo
    ref = await prepared_moot(ctx)
    opened = await roll_call.open_meeting(ctx, ANA, ref)
    assert opened.phase is Phase.DISCUSSION

    # Roll call: the Media WG has 4 active members (Iris is suspended): quorum 4.
    status = await roll_call.record_attendance(ctx, ANA, ref)
    await roll_call.record_attendance(ctx, CHLOE, ref)
    status = await roll_call.record_attendance(ctx, GWEN, ref)
    assert (status.assemblies[0].quorum.needed, status.assemblies[0].present) == (4, 3)
    assert not status.reached
    status = await roll_call.record_attendance(ctx, ANA, ref, who=ELIF)
    assert status.reached and status.attendees == 4
    # An interested Member from outside may take part but does not count for quorum.
    status = await roll_call.record_attendance(ctx, OUTSIDER_MEMBER, ref)
    assert status.attendees == 5 and status.assemblies[0].present == 4

    first = await debate.add_suggestion(ctx, CHLOE, ref, "A printed newsletter")
    second = await debate.add_suggestion(ctx, GWEN, ref, "An email newsletter")
    third = await debate.add_suggestion(ctx, OUTSIDER_MEMBER, ref, "Both, on alternate months")
    assert (first, second, third) == (1, 2, 3)

    await debate.start_debate(ctx, ANA, ref)
    # In debate people still put forward concrete proposals; the moderator collates.
    assert await debate.add_suggestion(ctx, CHLOE, ref, "Print for those offline") == 4
    one = await debate.add_option(ctx, ANA, ref, "Print only", suggestions=[1])
    two = await debate.add_option(ctx, ANA, ref, "Email only", suggestions=[2])
    three = await debate.add_option(ctx, ANA, ref, "Alternate months", suggestions=[3])
    merged = await debate.merge_options(ctx, ANA, ref, [two, three], "Email, with print on request")
    assert merged == 4
    summary = await debate.end_debate(ctx, ANA, ref)
    assert summary.phase is Phase.VOTE and summary.vote_round == 1
    with pytest.raises(RuleViolation, match="is voting"):
        await debate.add_suggestion(ctx, CHLOE, ref, "Too late")
    assert [o.number for o in await debate.active_options(ctx, ref)] == [one, merged]

    # No clear winner: back to debate, continued on a later day, then the vote again.
    # The vote is held on paper: its ballots are entered and counted by STAR.
    tie = b'1. Print only,"4. Email, with print on request"\n5,0\n0,5\n5,0\n0,5\n'
    again = await paper_votes.enter_paper_vote(ctx, ANA, ref, tie)
    assert again.result is not None and again.result["winner"] is None
    again = await meetings.meeting_summary(ctx, ref)
    assert again.phase is Phase.DEBATE
    later = ctx.now() + timedelta(days=30)  # no 14-day limit for a continuation
    continued = await preparation.schedule(
        ctx,
        ANA,
        ref,
        later,
        online_url="https://meet.example/2",
        accessibility="Captions",
        reason="Members asked for time to read the two options",
    )
    assert continued.meeting.starts_at == later and not continued.check.explanation_required
    assert await preparation.notify(ctx, ANA, ref) > 0
    await to_start(ctx, ref)
    assert (await debate.end_debate(ctx, ANA, ref)).vote_round == 2
    email = b'Print only,"Email, with print on request"\n1,5\n0,5\n5,4\n2,3\n'
    await paper_votes.enter_paper_vote(ctx, ANA, ref, email)
    done = await meetings.meeting_summary(ctx, ref)
    assert done.phase is Phase.CONSENSUS

    entries = await consensus.list_consensus(ctx, MEDIA)
    assert [(e.outcome, e.method) for e in entries] == [
        ("Email, with print on request", ConsensusMethod.STAR_BALLOT)
    ]
    assert await consensus.verify_chain(ctx) is None
    async with ctx.transaction() as session:
        merged_rows = list(
            await session.scalars(select(Option).where(Option.merged_into_id.is_not(None)))
        )
        assert {row.number for row in merged_rows} == {two, three}
        assert all(row.status is OptionStatus.MERGED for row in merged_rows)
        assert len(list(await session.scalars(select(OptionSuggestion)))) == 3
        actions = list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions.count("meeting.attend") == 5
    assert actions[-1] == "meeting.conclude_vote"


async def test_one_option_is_consensus_at_once(demo):
    ref = await prepared_moot(demo)
    await roll_call.open_meeting(demo, ANA, ref)
    for who in (ANA, CHLOE, GWEN, ELIF):
        await roll_call.record_attendance(demo, who, ref)
    await debate.start_debate(demo, ANA, ref)
    await debate.add_option(demo, BRYN if False else ANA, ref, "Monthly, by email")
    summary = await debate.end_debate(demo, ANA, ref)
    assert summary.phase is Phase.CONSENSUS and summary.vote_round == 0
    async with demo.transaction() as session:
        record = await session.scalar(select(ConsensusRecord))
    assert record.method is ConsensusMethod.SINGLE_OPTION
    assert record.outcome == "Monthly, by email"


async def test_no_decision_without_quorum(demo):
    ref = await prepared_moot(demo)
    await roll_call.open_meeting(demo, ANA, ref)
    for who in (ANA, CHLOE, GWEN):
        await roll_call.record_attendance(demo, who, ref)
    await debate.start_debate(demo, ANA, ref)
    await debate.add_option(demo, ANA, ref, "Yes")
    before = await row_counts(demo)
    with pytest.raises(RuleViolation, match="Quorum"):
        await debate.end_debate(demo, ANA, ref)
    assert await row_counts(demo) == before


async def test_notify_informs_every_eligible_person_in_their_language(demo):
    ref = await prepared_moot(demo)
    async with demo.transaction() as session:
        messages = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.is_direct)))
        people = {p.matrix_id: p for p in await session.scalars(select(Person))}
    recipients = {m.destination for m in messages}
    # The Media WG (not suspended, participants too) plus every non-suspended Member.
    assert ELIF in recipients and CHLOE in recipients and OUTSIDER_MEMBER in recipients
    assert IRIS not in recipients and OUTSIDER_PARTICIPANT not in recipients
    expected = {
        p.matrix_id
        for p in people.values()
        if p.matrix_id != IRIS
        and p.suspended_from is None
        and (p.status == "member" or p.matrix_id in {ELIF})
    }
    assert recipients == expected
    to_chloe = next(m for m in messages if m.destination == CHLOE)
    assert to_chloe.language == "fr"
    assert "Step-free entrance" in to_chloe.body
    # Notifying again for the same date queues nothing new.
    assert await preparation.notify(demo, ANA, ref) == 0


async def test_only_a_member_or_the_general_secretary_calls_a_moot(demo):
    before = await row_counts(demo)
    with pytest.raises(NotAllowed, match="member"):
        await meetings.call_moot(demo, OUTSIDER_MEMBER, MEDIA, "Can I call this?")
    with pytest.raises(NotFound):
        await meetings.call_moot(demo, "@nobody:example.org", MEDIA, "Who am I?")
    with pytest.raises(InvalidInput):
        await meetings.call_moot(demo, ANA, MEDIA, "   ")
    with pytest.raises(InvalidInput):
        await meetings.call_moot(demo, ANA, MEDIA, "x" * 1001)
    assert await row_counts(demo) == before
    # Chloé is secretary of the Disability Activism Society, so she may call one there,
    # and a member of the Media WG, so she may call one there too (docs: moot_called_by).
    assert (await meetings.call_moot(demo, CHLOE, "disability-activism-society", "Q?")).ref == "M-1"
    assert (await meetings.call_moot(demo, CHLOE, MEDIA, "Q?")).ref == "M-2"


async def test_suspended_and_outsiders_cannot_take_part(demo):
    ref = await prepared_moot(demo)
    await roll_call.open_meeting(demo, ANA, ref)
    before = await row_counts(demo)
    with pytest.raises(NotAllowed, match="suspended"):
        await roll_call.record_attendance(demo, IRIS, ref)
    with pytest.raises(NotAllowed, match="suspended"):
        await debate.add_suggestion(demo, IRIS, ref, "Let me speak")
    with pytest.raises(NotAllowed, match="suspended"):
        await roll_call.record_attendance(demo, ANA, ref, who=IRIS)
    with pytest.raises(NotAllowed, match="cannot take part"):
        await roll_call.record_attendance(demo, OUTSIDER_PARTICIPANT, ref)
    with pytest.raises(NotAllowed):
        await roll_call.record_attendance(demo, CHLOE, ref, who=GWEN)  # not her job
    assert await row_counts(demo) == before


async def test_members_must_be_told_the_date_as_it_stands(demo):
    ref = await prepared_moot(demo, wait_for_start=False)
    await preparation.schedule(
        demo, ANA, ref, demo.now() + timedelta(days=12), place="Hall", accessibility="Ramp"
    )
    with pytest.raises(RuleViolation, match="the date and time"):
        await roll_call.open_meeting(demo, ANA, ref)
    await preparation.notify(demo, ANA, ref)
    await to_start(demo, ref)
    assert (await roll_call.open_meeting(demo, ANA, ref)).phase is Phase.DISCUSSION
    # An open meeting that has not voted cannot be moved.
    with pytest.raises(RuleViolation, match="no clear winner"):
        await preparation.schedule(
            demo, ANA, ref, demo.now() + timedelta(days=3), place="Hall", accessibility="Ramp"
        )


async def test_cancel_and_follow_on_meetings(demo):
    first = await meetings.call_moot(demo, ANA, MEDIA, "First question")
    # Nothing follows from a meeting that has decided nothing (see test_dates_and_notices).
    with pytest.raises(RuleViolation, match="consensus"):
        await meetings.call_moot(demo, ANA, MEDIA, "Follow-up", earlier_meeting=first.ref)
    with pytest.raises(InvalidInput):
        await meetings.cancel_meeting(demo, ANA, first.ref, " ")
    cancelled = await meetings.cancel_meeting(demo, ANA, first.ref, "Duplicate")
    assert cancelled.phase is Phase.CANCELLED
    with pytest.raises(RuleViolation, match="already finished"):
        await meetings.cancel_meeting(demo, ANA, first.ref, "Again")
    with pytest.raises(RuleViolation, match="already finished"):
        await preparation.notify(demo, ANA, first.ref)


async def test_opening_needs_preparation(demo):
    called = await meetings.call_moot(demo, ANA, MEDIA, "Q?")
    await preparation.record_preparation(demo, ANA, called.ref, PreparationStep.FACTS, "Facts")
    with pytest.raises(RuleViolation) as caught:
        await roll_call.open_meeting(demo, ANA, called.ref)
    text = caught.value.message.render("en")
    assert (
        "eligible members informed" in text and "materials prepared" in text and "date set" in text
    )


async def test_dates_beyond_fourteen_days_need_a_published_reason(demo):
    called = await meetings.call_moot(demo, ANA, MEDIA, "Q?")
    async with demo.transaction() as session:
        from harmony_matrix.services.lookup import assembly_by_slug

        (await assembly_by_slug(session, MEDIA)).matrix_room_id = "!media:harmony.uk"
    far = demo.now() + timedelta(days=20)
    kwargs = {"place": "Hall", "accessibility": "Step-free"}
    with pytest.raises(RuleViolation, match="20 days"):
        await preparation.schedule(demo, ANA, called.ref, far, **kwargs)
    result = await preparation.schedule(
        demo, ANA, called.ref, far, reason="The hall is closed until then", **kwargs
    )
    assert result.check.explanation_required
    async with demo.transaction() as session:
        notices = list(await session.scalars(select(OutboxMessage)))
    room = [n for n in notices if n.destination == "!media:harmony.uk"]
    assert len(room) == 1
    assert "The hall is closed until then" in room[0].body
    # Published to every eligible person too, in their own language.
    direct = {n.destination: n for n in notices if n.is_direct}
    assert GWEN in direct and OUTSIDER_MEMBER in direct and IRIS not in direct
    assert direct[CHLOE].language == "fr"
    assert "The hall is closed until then" in direct[CHLOE].body
    with pytest.raises(InvalidInput, match="--access"):
        await preparation.schedule(demo, ANA, called.ref, far, place="Hall")
    with pytest.raises(InvalidInput, match="--place"):
        await preparation.schedule(demo, ANA, called.ref, far, accessibility="x")
    with pytest.raises(RuleViolation, match="future"):
        await preparation.schedule(demo, ANA, called.ref, demo.now() - timedelta(hours=1), **kwargs)


async def test_quorum_is_fixed_when_the_meeting_opens(demo, clock):
    # The OWG has 38 active members: quorum ceil(15% of 38) = 6.
    ref = await prepared_moot(demo, slug="operational-working-group")
    await roll_call.open_meeting(demo, ANA, ref)
    before = await roll_call.meeting_quorum(demo, ref)
    # 100 days later nobody is active any more; live, the quorum would drop to 4.
    clock.advance(days=100)
    live = await registry.assembly_quorum(demo, "operational-working-group")
    assert live.quorum.needed == 4
    after = await roll_call.meeting_quorum(demo, ref)
    assert before.assemblies[0].quorum.needed == after.assemblies[0].quorum.needed == 6
    assert after.assemblies[0].quorum.active_population == 38


async def test_moderator_edits_options_but_does_not_run_the_meeting(demo):
    ref = await prepared_moot(demo, slug="operational-working-group")
    await roll_call.open_meeting(demo, ANA, ref)
    await debate.start_debate(demo, ANA, ref)
    number = await debate.add_option(demo, BRYN, ref, "Moderator's summary")
    await debate.withdraw_option(demo, BRYN, ref, number)
    with pytest.raises(RuleViolation, match="no longer open"):
        await debate.withdraw_option(demo, BRYN, ref, number)
    with pytest.raises(NotAllowed):
        await debate.end_debate(demo, BRYN, ref)
    with pytest.raises(NotFound):
        await debate.add_option(demo, BRYN, ref, "From nothing", suggestions=[99])


async def test_two_secretaries_ending_the_debate_at_once_record_one_consensus(demo):
    import asyncio

    ref = await prepared_moot(demo)
    await roll_call.open_meeting(demo, ANA, ref)
    for who in (ANA, CHLOE, GWEN, ELIF):
        await roll_call.record_attendance(demo, who, ref)
    await debate.start_debate(demo, ANA, ref)
    await debate.add_option(demo, ANA, ref, "The only option")
    results = await asyncio.gather(
        *(debate.end_debate(demo, ANA, ref) for _ in range(5)), return_exceptions=True
    )
    done = [r for r in results if not isinstance(r, BaseException)]
    assert len(done) == 1
    assert all(isinstance(r, RuleViolation) for r in results if r not in done), results
    assert len(await consensus.list_consensus(demo)) == 1


async def test_decisions_of_different_meetings_at_once_keep_one_chain(demo):
    import asyncio

    refs = []
    for _ in range(4):
        ref = await prepared_moot(demo)
        await roll_call.open_meeting(demo, ANA, ref)
        for who in (ANA, CHLOE, GWEN, ELIF):
            await roll_call.record_attendance(demo, who, ref)
        await debate.start_debate(demo, ANA, ref)
        await debate.add_option(demo, ANA, ref, f"Decision of {ref}")
        refs.append(ref)
    await asyncio.gather(*(debate.end_debate(demo, ANA, ref) for ref in refs))
    entries = await consensus.list_consensus(demo)
    assert sorted(e.meeting_ref for e in entries) == sorted(refs)
    assert await consensus.verify_chain(demo) is None
