"""Things of Assemblies, and petitions that call a Party Thing."""

import asyncio
import math
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.constitution.scheduling import MeetingKind
from harmony_matrix.errors import InvalidInput, NotAllowed, RuleViolation
from harmony_matrix.services import debate, meetings, petitions, preparation, roll_call
from harmony_matrix.storage.models import (
    AuditEvent,
    Meeting,
    OutboxMessage,
    Person,
    PetitionStatus,
    Signature,
    Trigger,
)

from .helpers import (
    ANA,
    CHLOE,
    DAS,
    ELIF,
    FARAH,
    GWEN,
    HAMZA,
    IRIS,
    JON,
    MEDIA,
    OUTSIDER_MEMBER,
    reach_petition,
    reached_before_auto_call,
    row_counts,
    to_start,
)

PETITION_ROOM = "!petitions:harmony.uk"


async def _members(ctx, *, suspended: bool = False) -> list[str]:
    async with ctx.transaction() as session:
        people = await session.scalars(select(Person).order_by(Person.id))
        return [
            p.matrix_id
            for p in people
            if p.status == "member" and (p.suspended_from is not None) == suspended
        ]


async def test_petition_threshold_is_fifteen_percent_of_non_suspended_members(demo):
    members = await _members(demo)
    started = await petitions.start_petition(demo, CHLOE, "Adopt a new logo")
    assert started.members_at_opening == len(members)
    assert started.progress.threshold == math.ceil(len(members) * 15 / 100)
    assert started.progress.signatures == 1  # the originator signs first


async def test_petition_reaches_its_threshold_and_calls_a_party_thing(demo, clock):
    view = await petitions.start_petition(demo, CHLOE, "Adopt a new logo", room_id=PETITION_ROOM)
    signers = [m for m in await _members(demo) if m != CHLOE]
    for signer in signers[: view.progress.threshold - 2]:
        view = await petitions.sign_petition(demo, signer, view.ref)
    assert view.status is PetitionStatus.OPEN and view.progress.missing == 1
    assert (view.party_thing_ref, view.party_thing_by) == (None, None)
    with pytest.raises(RuleViolation, match="not reached"):
        await meetings.call_party_thing(demo, ANA, view.ref)
    clock.advance(hours=1)
    reached_at = clock()
    view = await petitions.sign_petition(demo, signers[view.progress.threshold - 2], view.ref)

    # The signature that reaches the threshold calls the Party Thing; the petition closes.
    assert view.progress.reached and view.status is PetitionStatus.CLOSED
    assert (view.reached_at, view.party_thing_ref) == (reached_at, "M-1")
    # Its 21 days count from reaching, between calendar days in the party's timezone.
    assert view.party_thing_by == date(2026, 11, 23)
    thing = await meetings.meeting_summary(demo, "M-1")
    assert thing.kind is MeetingKind.PARTY_THING and thing.question == "Adopt a new logo"
    assert thing.assemblies == () and thing.topic is None
    async with demo.transaction() as session:
        meeting = await session.get(Meeting, 1)
        assert meeting is not None
        assert (meeting.trigger, meeting.called_by_id) == (Trigger.PETITION, None)
        assert meeting.planning_triggered_at == reached_at
        to_general_secretary = list(
            await session.scalars(select(OutboxMessage).where(OutboxMessage.destination == ANA))
        )
        to_room = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.destination == PETITION_ROOM)
            )
        )
    [told] = to_general_secretary
    assert told.is_direct
    for text in ("P-1", "Party Thing M-1", "held by 23 November 2026", "!schedule M-1"):
        assert text in told.body
    [announced] = to_room
    assert not announced.is_direct
    for text in ("P-1", "Party Thing M-1", "held by 23 November 2026"):
        assert text in announced.body

    # Nobody needs to call it; nobody can call it again.
    with pytest.raises(NotAllowed, match="General Secretary"):
        await meetings.call_party_thing(demo, GWEN, view.ref)
    with pytest.raises(RuleViolation, match="already called meeting M-1"):
        await meetings.call_party_thing(demo, ANA, view.ref)
    with pytest.raises(RuleViolation, match="called Party Thing M-1"):
        await petitions.sign_petition(demo, signers[view.progress.threshold - 1], view.ref)
    assert (await petitions.petition_status(demo, view.ref)).party_thing_ref == "M-1"

    # The originator said she cannot come on one day; that day is refused.
    day = (demo.now() + timedelta(days=5)).date()
    assert await preparation.declare_unavailable(demo, CHLOE, [day.isoformat()]) == 1
    kwargs = {"online_url": "https://meet.example/thing", "accessibility": "Captions"}
    with pytest.raises(RuleViolation, match="originator"):
        await preparation.schedule(demo, ANA, thing.ref, demo.now() + timedelta(days=5), **kwargs)
    # 21 days from when the petition reached its threshold, two days ago by now.
    clock.advance(days=2)
    with pytest.raises(RuleViolation, match="22 days"):
        await preparation.schedule(demo, ANA, thing.ref, demo.now() + timedelta(days=20), **kwargs)
    await preparation.schedule(demo, ANA, thing.ref, demo.now() + timedelta(days=6), **kwargs)
    for step in (PreparationStep.FACTS, PreparationStep.MATERIALS):
        await preparation.record_preparation(demo, ANA, thing.ref, step, "Ready")
    await preparation.notify(demo, ANA, thing.ref)
    await to_start(demo, thing.ref)
    await roll_call.open_meeting(demo, ANA, thing.ref)
    await roll_call.record_attendance(demo, ANA, thing.ref)
    # A Party Thing decides for the Membership: Participants do not take part.
    with pytest.raises(NotAllowed, match="cannot take part"):
        await roll_call.record_attendance(demo, ELIF, thing.ref)
    async with demo.transaction() as session:
        invited = set(
            await session.scalars(
                select(OutboxMessage.destination).where(
                    OutboxMessage.is_direct, OutboxMessage.body.contains("Adopt a new logo")
                )
            )
        )
    assert invited == set(await _members(demo))
    await debate.start_debate(demo, ANA, thing.ref)
    await debate.add_option(demo, ANA, thing.ref, "The blue logo")
    await debate.add_option(demo, ANA, thing.ref, "The green logo")
    with pytest.raises(RuleViolation, match="originator"):
        await debate.end_debate(demo, ANA, thing.ref)
    await roll_call.record_attendance(demo, CHLOE, thing.ref)
    assert (await debate.end_debate(demo, ANA, thing.ref)).phase is Phase.VOTE


@pytest.mark.parametrize(
    ("who", "reason"),
    [(ELIF, "not Participants"), (IRIS, "suspended"), (JON, "suspended")],
)
async def test_who_cannot_start_or_sign(demo, who, reason):
    view = await petitions.start_petition(demo, CHLOE, "A petition")
    before = await row_counts(demo)
    with pytest.raises(NotAllowed, match=reason):
        await petitions.sign_petition(demo, who, view.ref)
    with pytest.raises(NotAllowed, match=reason):
        await petitions.start_petition(demo, who, "My petition")
    assert await row_counts(demo) == before


async def test_signing_twice_is_refused(demo):
    view = await petitions.start_petition(demo, CHLOE, "A petition")
    with pytest.raises(RuleViolation, match="already signed"):
        await petitions.sign_petition(demo, CHLOE, view.ref)
    with pytest.raises(InvalidInput):
        await petitions.start_petition(demo, CHLOE, "  ")
    with pytest.raises(InvalidInput, match="ID"):
        await petitions.petition_status(demo, "P-x")


async def test_a_signature_stops_counting_while_its_signer_is_suspended(demo, clock):
    view = await petitions.start_petition(demo, CHLOE, "A petition")
    view = await petitions.sign_petition(demo, GWEN, view.ref)
    assert view.progress.signatures == 2
    async with demo.transaction() as session:
        gwen = await session.scalar(select(Person).where(Person.matrix_id == GWEN))
        gwen.suspended_from = clock()
    assert (await petitions.petition_status(demo, view.ref)).progress.signatures == 1


async def test_concurrent_signatures_are_each_counted_once(demo):
    view = await petitions.start_petition(demo, CHLOE, "A petition")
    # Not enough to reach the threshold: that is the next test.
    signers = [m for m in await _members(demo) if m != CHLOE][: view.progress.threshold - 2]
    assert len(signers) >= 3
    results = await asyncio.gather(
        *(petitions.sign_petition(demo, s, view.ref) for s in signers + signers[:3]),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 3
    assert all(isinstance(r, RuleViolation) for r in refused), refused
    async with demo.transaction() as session:
        count = len(list(await session.scalars(select(Signature))))
    assert count == len(signers) + 1
    status = await petitions.petition_status(demo, view.ref)
    assert status.progress.signatures == len(signers) + 1 and status.is_open


async def test_two_signatures_racing_for_the_last_place_call_one_party_thing(demo):
    """The petition row is locked while a signature is counted: the second signature
    waits, then finds the petition closed by the Party Thing the first one called."""
    view = await petitions.start_petition(demo, CHLOE, "A petition", room_id=PETITION_ROOM)
    signers = [m for m in await _members(demo) if m != CHLOE]
    for signer in signers[: view.progress.threshold - 2]:
        view = await petitions.sign_petition(demo, signer, view.ref)
    assert view.progress.missing == 1
    last_two = signers[view.progress.threshold - 2 : view.progress.threshold]
    results = await asyncio.gather(
        *(petitions.sign_petition(demo, s, view.ref) for s in last_two),
        return_exceptions=True,
    )
    called = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert [v.party_thing_ref for v in called] == ["M-1"]
    assert len(refused) == 1 and isinstance(refused[0], RuleViolation), refused
    assert "called Party Thing M-1" in str(refused[0])
    async with demo.transaction() as session:
        things = list(await session.scalars(select(Meeting.id).where(Meeting.petition_id == 1)))
        queued = list(
            await session.scalars(
                select(OutboxMessage.destination).where(
                    OutboxMessage.dedupe_key.like("petition-reached%")
                )
            )
        )
        reached = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "petition.reached")
        )
    assert things == [1]
    assert sorted(queued) == sorted([ANA, PETITION_ROOM])
    assert reached == 1


async def test_a_petition_started_outside_a_room_tells_only_the_general_secretary(demo):
    view = await reach_petition(demo, GWEN, "Meet in Cardiff")
    async with demo.transaction() as session:
        queued = list(
            await session.execute(
                select(OutboxMessage.destination, OutboxMessage.is_direct).where(
                    OutboxMessage.dedupe_key.like("petition-reached%")
                )
            )
        )
    assert queued == [(ANA, True)]
    assert view.party_thing_ref == "M-1"


async def test_the_day_a_party_thing_must_be_held_by_is_the_partys_local_day(demo, clock):
    """Reached at 23:30 UTC on 2 November, which is 3 November in Tokyo (UTC+9): 21 days
    on is 24 November, not 23."""
    demo.party = replace(demo.party, timezone="Asia/Tokyo")
    clock.current = datetime(2026, 11, 2, 23, 30, tzinfo=UTC)
    view = await reach_petition(demo)
    assert view.party_thing_by == date(2026, 11, 24)
    assert view.reached_at == clock()
    with pytest.raises(RuleViolation, match="22 days"):
        await preparation.schedule(
            demo,
            ANA,
            "M-1",
            datetime(2026, 11, 25, 1, 0, tzinfo=UTC),  # 10:00 on the 25th in Tokyo
            online_url="https://meet.example/thing",
            accessibility="Captions",
        )
    fine = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # 19:00 on the 24th in Tokyo
    await preparation.schedule(
        demo, ANA, "M-1", fine, online_url="https://meet.example/thing", accessibility="Captions"
    )
    status = await petitions.petition_status(demo, view.ref)
    assert status.party_thing_starts_at == fine


async def test_a_petition_reached_before_this_change_is_called_by_the_general_secretary(demo):
    view = await reached_before_auto_call(demo)
    assert view.status is PetitionStatus.REACHED and view.party_thing_ref is None
    thing = await meetings.call_party_thing(demo, ANA, view.ref)
    status = await petitions.petition_status(demo, view.ref)
    assert status.status is PetitionStatus.CLOSED and status.party_thing_ref == thing.ref
    assert status.party_thing_by == date(2026, 11, 23)


async def test_a_thing_needs_the_quorum_of_every_assembly(demo):
    thing = await meetings.call_thing(demo, ANA, [MEDIA, DAS], "Shall we publish in Easy Read?")
    assert thing.assemblies == (MEDIA, DAS)
    await preparation.schedule(
        demo,
        ANA,
        thing.ref,
        demo.now() + timedelta(days=21),
        online_url="https://meet.example/thing",
        accessibility="Easy Read papers",
    )
    for step in (PreparationStep.FACTS, PreparationStep.MATERIALS):
        await preparation.record_preparation(demo, CHLOE, thing.ref, step, "Ready")
    await preparation.notify(demo, ANA, thing.ref)
    await to_start(demo, thing.ref)
    await roll_call.open_meeting(demo, ANA, thing.ref)
    # Chloé is in both assemblies and is counted for each.
    for who in (ANA, CHLOE, GWEN, ELIF, FARAH, HAMZA):
        status = await roll_call.record_attendance(demo, who, thing.ref)
    by_slug = {a.slug: a for a in status.assemblies}
    assert (by_slug[MEDIA].present, by_slug[MEDIA].reached) == (4, True)
    assert by_slug[DAS].present == 3 and not by_slug[DAS].reached
    assert not status.reached
    with pytest.raises(InvalidInput, match="two assemblies"):
        await meetings.call_thing(demo, ANA, [MEDIA, MEDIA], "One assembly")
    with pytest.raises(NotAllowed):
        await meetings.call_thing(demo, OUTSIDER_MEMBER, [MEDIA, DAS], "Not a secretary")
