"""Issue 7: dates, places and notices. A meeting begins at its announced time, on a day
its petition's originator can attend, after everyone eligible was told of it as it
stands; a continuation after "no clear winner" is explained, announced and waited for."""

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.errors import InvalidInput, RuleViolation
from harmony_matrix.services import (
    debate,
    meetings,
    paper_votes,
    preparation,
    roll_call,
)
from harmony_matrix.services.lookup import meeting_by_ref, meeting_ref
from harmony_matrix.storage.models import OutboxMessage, Person
from tests.conftest import read_english

from .helpers import ANA, CHLOE, ELIF, GWEN, MEDIA, OWG, reach_petition, row_counts

WHERE = {
    "place": "Community Hall, 1 High St",
    "online_url": "https://meet.example/harmony",
    "accessibility": "Step-free entrance, hearing loop, live captions online",
    "route_help": "Bus 12 stops outside",
}


async def _moot_set_ahead(ctx, days: int = 10, slug: str = MEDIA) -> str:
    """A Moot with its four preparation steps done, set ``days`` ahead; the clock is
    not moved, so the meeting has not started yet."""
    called = await meetings.call_moot(ctx, ANA, slug, "Should we publish a newsletter?")
    for step in (PreparationStep.FACTS, PreparationStep.MATERIALS):
        await preparation.record_preparation(ctx, ANA, called.ref, step, "Ready")
    await preparation.schedule(ctx, ANA, called.ref, ctx.now() + timedelta(days=days), **WHERE)
    await preparation.notify(ctx, ANA, called.ref)
    return called.ref


async def _starts_at(ctx, ref: str):
    return (await meetings.meeting_summary(ctx, ref)).starts_at


async def _outbox(ctx) -> list[OutboxMessage]:
    async with ctx.transaction() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


# --- Opening before the announced start -------------------------------------------


async def test_a_meeting_does_not_open_before_its_announced_start(demo, clock):
    ref = await _moot_set_ahead(demo, days=10)
    starts = await _starts_at(demo, ref)
    before = await row_counts(demo)
    with pytest.raises(RuleViolation, match="too early") as caught:
        await roll_call.open_meeting(demo, ANA, ref)
    assert "30 minutes" in caught.value.message.render("en")
    assert await row_counts(demo) == before
    # The default margin: half an hour early is fine, a minute more is not.
    clock.current = starts - timedelta(minutes=31)
    with pytest.raises(RuleViolation, match="too early"):
        await roll_call.open_meeting(demo, ANA, ref)
    clock.current = starts - timedelta(minutes=30)
    assert (await roll_call.open_meeting(demo, ANA, ref)).phase is Phase.DISCUSSION


async def test_the_margin_is_configurable_and_preparation_off_keeps_the_date(demo, clock):
    demo.rules = replace(demo.rules, opening_margin_minutes=0, require_preparation=False)
    ref = await _moot_set_ahead(demo, days=3)
    clock.current = await _starts_at(demo, ref) - timedelta(minutes=1)
    # Not recording preparation does not make an announced date meaningless.
    with pytest.raises(RuleViolation, match="too early"):
        await roll_call.open_meeting(demo, ANA, ref)
    clock.advance(minutes=1)
    await roll_call.open_meeting(demo, ANA, ref)
    # With preparation off and no date at all, there is nothing to wait for.
    undated = await meetings.call_moot(demo, ANA, MEDIA, "Undated?")
    assert (await roll_call.open_meeting(demo, ANA, undated.ref)).phase is Phase.DISCUSSION


# --- The notice: date, time, place, link, access, route help ----------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"place": "Library, 2 Low St"}, "the place"),
        ({"online_url": "https://meet.example/other"}, "the online link"),
        ({"accessibility": "Step-free entrance only"}, "the accessibility provisions"),
        ({"route_help": "Bus 14 now"}, "the help with routes"),
        ({"hours": 2}, "the date and time"),
    ],
)
async def test_any_change_to_the_notice_needs_a_new_notice(demo, clock, change, named):
    ref = await _moot_set_ahead(demo, days=10)
    starts = await _starts_at(demo, ref)
    change = dict(change)
    new_start = starts + timedelta(hours=change.pop("hours", 0))
    await preparation.schedule(demo, ANA, ref, new_start, **{**WHERE, **change})
    clock.current = new_start
    with pytest.raises(RuleViolation) as caught:
        await roll_call.open_meeting(demo, ANA, ref)
    text = caught.value.message.render("en")
    assert named in text and "Inform them again" in text
    for other in ("the place", "the online link", "the date and time"):
        if other != named:
            assert other not in text
    # Informing again reaches everyone, although the day did not change.
    assert await preparation.notify(demo, ANA, ref) > 10
    assert (await roll_call.open_meeting(demo, ANA, ref)).phase is Phase.DISCUSSION


async def test_the_last_notice_counts_not_an_older_one(demo, clock):
    """Told "Hall", then told "Library", then moved back to "Hall" without a word: the
    members' last notice says Library, so the meeting may not open."""
    ref = await _moot_set_ahead(demo, days=10)
    starts = await _starts_at(demo, ref)
    await preparation.schedule(demo, ANA, ref, starts, **{**WHERE, "place": "Library"})
    assert await preparation.notify(demo, ANA, ref) > 0
    await preparation.schedule(demo, ANA, ref, starts, **WHERE)
    clock.current = starts
    with pytest.raises(RuleViolation, match="the place"):
        await roll_call.open_meeting(demo, ANA, ref)
    # Telling them again queues the notice anew (the first "Hall" notice is not reused).
    queued = await preparation.notify(demo, ANA, ref)
    assert queued > 0
    # Each notice's text (the calendar file that follows each is not counted here).
    to_gwen = [m for m in await _outbox(demo) if m.destination == GWEN and m.attachment is None]
    assert len(to_gwen) == 3 and "Community Hall" in to_gwen[-1].body
    # Informing twice with nothing changed queues nothing new.
    assert await preparation.notify(demo, ANA, ref) == 0
    await roll_call.open_meeting(demo, ANA, ref)


# --- The petition's originator ----------------------------------------------------


async def _party_thing(demo, clock) -> str:
    """Chloé's petition reaches its threshold and so calls its Party Thing, which Ana
    (General Secretary) organises; an hour passes."""
    view = await reach_petition(demo, CHLOE)
    clock.advance(hours=1)
    assert view.party_thing_ref is not None
    return view.party_thing_ref


async def _prepare(demo, ref: str, starts) -> None:
    await preparation.schedule(demo, ANA, ref, starts, **WHERE)
    for step in (PreparationStep.FACTS, PreparationStep.MATERIALS):
        await preparation.record_preparation(demo, ANA, ref, step, "Ready")
    await preparation.notify(demo, ANA, ref)


async def test_the_originator_declaring_the_meeting_day_unavailable(demo, clock):
    ref = await _party_thing(demo, clock)
    starts = demo.now() + timedelta(days=6)
    await _prepare(demo, ref, starts)
    before = len(await _outbox(demo))
    # Chloé, the originator, now says she cannot come that day (and another day).
    other_day = (starts + timedelta(days=3)).date()
    await preparation.declare_unavailable(
        demo, CHLOE, [starts.date().isoformat(), other_day.isoformat()]
    )
    told = (await _outbox(demo))[before:]
    assert [m.destination for m in told] == [ANA]  # the caller and General Secretary
    assert ref in told[0].body and starts.date().isoformat() in told[0].body
    assert "Chloé Martin" in told[0].body
    # Declaring it again tells nobody twice.
    await preparation.declare_unavailable(demo, CHLOE, [starts.date().isoformat()])
    assert len(await _outbox(demo)) == before + 1
    clock.current = starts
    with pytest.raises(RuleViolation, match="originator"):
        await roll_call.open_meeting(demo, ANA, ref)
    # A new date, announced again, and the meeting opens.
    new_start = starts + timedelta(days=1)
    clock.current = starts - timedelta(days=1)
    await preparation.schedule(demo, ANA, ref, new_start, **WHERE)
    await preparation.notify(demo, ANA, ref)
    clock.current = new_start
    assert (await roll_call.open_meeting(demo, ANA, ref)).phase is Phase.DISCUSSION


async def test_a_day_the_originator_cannot_attend_that_is_not_the_meeting_day(demo, clock):
    ref = await _party_thing(demo, clock)
    starts = demo.now() + timedelta(days=6)
    await _prepare(demo, ref, starts)
    before = len(await _outbox(demo))
    await preparation.declare_unavailable(
        demo, CHLOE, [(starts + timedelta(days=1)).date().isoformat()]
    )
    # Only the days after the meeting: nobody needs telling.
    assert len(await _outbox(demo)) == before
    clock.current = starts
    await roll_call.open_meeting(demo, ANA, ref)


async def test_a_suspended_originator_does_not_count_as_present(demo, clock):
    ref = await _party_thing(demo, clock)
    starts = demo.now() + timedelta(days=6)
    await _prepare(demo, ref, starts)
    clock.current = starts
    await roll_call.open_meeting(demo, ANA, ref)
    for who in (ANA, CHLOE):
        await roll_call.record_attendance(demo, who, ref)
    await debate.start_debate(demo, ANA, ref)
    await debate.add_option(demo, ANA, ref, "The blue logo")
    async with demo.transaction() as session:
        chloe = await session.scalar(select(Person).where(Person.matrix_id == CHLOE))
        chloe.suspended_from = clock()
    before = await row_counts(demo)
    with pytest.raises(RuleViolation, match="originator"):
        await debate.end_debate(demo, ANA, ref)
    assert await row_counts(demo) == before
    # Her suspension ends: she is present again and the Thing decides.
    async with demo.transaction() as session:
        chloe = await session.scalar(select(Person).where(Person.matrix_id == CHLOE))
        chloe.suspended_until = clock() + timedelta(minutes=5)
    clock.advance(minutes=5)
    assert (await debate.end_debate(demo, ANA, ref)).phase is Phase.CONSENSUS


# --- A continuation after no clear winner -----------------------------------------


async def _no_clear_winner(demo, clock) -> str:
    ref = await _moot_set_ahead(demo, days=2)
    clock.current = await _starts_at(demo, ref)
    await roll_call.open_meeting(demo, ANA, ref)
    for who in (ANA, CHLOE, GWEN, ELIF):
        await roll_call.record_attendance(demo, who, ref)
    await debate.start_debate(demo, ANA, ref)
    await debate.add_option(demo, ANA, ref, "Print")
    await debate.add_option(demo, ANA, ref, "Email")
    await debate.end_debate(demo, ANA, ref)
    # A tie on paper: no clear winner, so the meeting goes back to debate.
    await paper_votes.enter_paper_vote(demo, ANA, ref, b"Print,Email\n5,0\n0,5\n")
    assert (await meetings.meeting_summary(demo, ref)).phase is Phase.DEBATE
    return ref


async def test_a_continuation_needs_a_reason_a_notice_and_its_time(demo, clock):
    await read_english(demo)
    ref = await _no_clear_winner(demo, clock)
    later = demo.now() + timedelta(days=30)
    before = await row_counts(demo)
    for reason in ("", "   "):
        with pytest.raises(InvalidInput, match="--reason"):
            await preparation.schedule(demo, ANA, ref, later, reason=reason, **WHERE)
    assert await row_counts(demo) == before
    why = "The hall is booked this evening; we vote again next month"
    result = await preparation.schedule(demo, ANA, ref, later, reason=why, **WHERE)
    assert result.meeting.starts_at == later
    # Nobody was told of the new date: the vote may not begin.
    clock.current = later
    with pytest.raises(RuleViolation, match="Inform them again"):
        await debate.end_debate(demo, ANA, ref)
    clock.current = later - timedelta(days=29)
    assert await preparation.notify(demo, ANA, ref) > 10
    texts = [m for m in await _outbox(demo) if m.attachment is None]
    to_chloe = [m for m in texts if m.destination == CHLOE][-1]
    assert why in to_chloe.body  # in French, with the reason in her words
    to_gwen = [m for m in texts if m.destination == GWEN][-1]
    assert why in to_gwen.body and "continues" in to_gwen.body
    # Told, but it is not time yet.
    before = await row_counts(demo)
    with pytest.raises(RuleViolation, match="too early"):
        await debate.end_debate(demo, ANA, ref)
    assert await row_counts(demo) == before
    clock.current = later - timedelta(minutes=30)
    summary = await debate.end_debate(demo, ANA, ref)
    assert summary.phase is Phase.VOTE and summary.vote_round == 2


async def test_the_vote_continuing_the_same_day_needs_no_new_date(demo, clock):
    ref = await _no_clear_winner(demo, clock)
    assert (await debate.end_debate(demo, ANA, ref)).vote_round == 2


# --- How the Moot's 14 days are counted -------------------------------------------


@pytest.mark.parametrize(("counted_from", "allowed"), [("trigger", False), ("scheduling", True)])
async def test_the_moot_limit_counts_from_the_call_or_from_the_scheduling(
    demo, clock, counted_from, allowed
):
    demo.rules = replace(demo.rules, moot_days_counted_from=counted_from)
    called = await meetings.call_moot(demo, ANA, MEDIA, "Q?")
    clock.advance(days=10)
    starts = demo.now() + timedelta(days=14)  # 24 days after the call, 14 from today
    if allowed:
        result = await preparation.schedule(demo, ANA, called.ref, starts, **WHERE)
        assert not result.check.explanation_required
        assert result.check.days_after_trigger == 24
    else:
        with pytest.raises(RuleViolation, match="24 days"):
            await preparation.schedule(demo, ANA, called.ref, starts, **WHERE)
    # A Thing counts from its trigger whatever the Moot setting.
    thing = await meetings.call_thing(demo, ANA, [MEDIA, OWG], "Together?")
    clock.advance(days=10)
    with pytest.raises(RuleViolation, match="31 days"):
        await preparation.schedule(demo, ANA, thing.ref, demo.now() + timedelta(days=21), **WHERE)


# --- A follow-on meeting ------------------------------------------------------------


async def test_a_follow_on_moot_needs_an_earlier_meeting_that_decided(demo, clock):
    planned = await meetings.call_moot(demo, ANA, OWG, "Still planning")
    cancelled = await meetings.call_moot(demo, ANA, OWG, "Called off")
    await meetings.cancel_meeting(demo, ANA, cancelled.ref, "Duplicate")
    before = await row_counts(demo)
    for earlier, state in ((planned, "planned"), (cancelled, "cancelled")):
        with pytest.raises(RuleViolation, match="consensus") as caught:
            await meetings.call_moot(demo, ANA, MEDIA, "Follow-up", earlier_meeting=earlier.ref)
        assert state in caught.value.message.render("en")
    assert await row_counts(demo) == before
    # A decision of another assembly may lead to a Moot of this one.
    decided = await _moot_set_ahead(demo, days=1, slug=MEDIA)
    clock.current = await _starts_at(demo, decided)
    await roll_call.open_meeting(demo, ANA, decided)
    for who in (ANA, CHLOE, GWEN, ELIF):
        await roll_call.record_attendance(demo, who, decided)
    await debate.start_debate(demo, ANA, decided)
    await debate.add_option(demo, ANA, decided, "Yes")
    await debate.end_debate(demo, ANA, decided)
    follow = await meetings.call_moot(demo, ANA, OWG, "How?", earlier_meeting=decided)
    assert follow.phase is Phase.PLANNING
    async with demo.transaction() as session:
        stored = await meeting_by_ref(session, follow.ref)
        assert stored.trigger == "earlier_decision"
        assert meeting_ref(stored.earlier_meeting_id) == decided


async def test_a_notice_recorded_before_versioning_counts_as_out_of_date(demo, clock):
    """An informing step written before notices were versioned holds the date only: it
    says nothing of the place or the provisions, so members are informed once more."""
    from harmony_matrix.storage.models import PreparationRecord

    ref = await _moot_set_ahead(demo, days=2)
    starts = await _starts_at(demo, ref)
    async with demo.transaction() as session:
        record = await session.scalar(
            select(PreparationRecord).where(PreparationRecord.step == PreparationStep.INFORMED)
        )
        record.note = starts.isoformat()
    clock.current = starts
    with pytest.raises(RuleViolation) as caught:
        await roll_call.open_meeting(demo, ANA, ref)
    assert "the date and time, the place" in caught.value.message.render("en")
    assert await preparation.notify(demo, ANA, ref) > 10
    await roll_call.open_meeting(demo, ANA, ref)
