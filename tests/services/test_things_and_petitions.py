"""Things of Assemblies, and petitions that call a Party Thing."""

import asyncio
import math
from datetime import timedelta

import pytest
from sqlalchemy import select

from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.errors import InvalidInput, NotAllowed, RuleViolation
from harmony_matrix.services import debate, meetings, petitions, preparation, roll_call
from harmony_matrix.storage.models import OutboxMessage, Person, PetitionStatus, Signature

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
    row_counts,
    to_start,
)


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
    view = await petitions.start_petition(demo, CHLOE, "Adopt a new logo")
    signers = [m for m in await _members(demo) if m != CHLOE]
    for signer in signers[: view.progress.threshold - 2]:
        view = await petitions.sign_petition(demo, signer, view.ref)
    assert view.status is PetitionStatus.OPEN and view.progress.missing == 1
    with pytest.raises(RuleViolation, match="not reached"):
        await meetings.call_party_thing(demo, ANA, view.ref)
    clock.advance(hours=1)
    view = await petitions.sign_petition(demo, signers[view.progress.threshold - 2], view.ref)
    assert view.progress.reached and view.status is PetitionStatus.REACHED
    async with demo.transaction() as session:
        to_general_secretary = list(
            await session.scalars(select(OutboxMessage).where(OutboxMessage.destination == ANA))
        )
    assert len(to_general_secretary) == 1 and "P-1" in to_general_secretary[0].body

    # Only the General Secretary calls it; planning was triggered when it was reached.
    with pytest.raises(NotAllowed, match="General Secretary"):
        await meetings.call_party_thing(demo, GWEN, view.ref)
    thing = await meetings.call_party_thing(demo, ANA, view.ref)
    assert thing.question == "Adopt a new logo" and thing.assemblies == ()
    with pytest.raises(RuleViolation):
        await meetings.call_party_thing(demo, ANA, view.ref)

    # The originator said she cannot come on one day; that day is refused.
    day = (demo.now() + timedelta(days=5)).date()
    assert await preparation.declare_unavailable(demo, CHLOE, [day.isoformat()]) == 1
    kwargs = {"online_url": "https://meet.example/thing", "accessibility": "Captions"}
    with pytest.raises(RuleViolation, match="originator"):
        await preparation.schedule(demo, ANA, thing.ref, demo.now() + timedelta(days=5), **kwargs)
    # 21 days from when the petition reached its threshold, not from the call.
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
    signers = [m for m in await _members(demo) if m != CHLOE][:8]
    results = await asyncio.gather(
        *(petitions.sign_petition(demo, s, view.ref) for s in signers + signers[:3]),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 3
    assert all(isinstance(r, RuleViolation) for r in refused), refused
    async with demo.transaction() as session:
        count = len(list(await session.scalars(select(Signature))))
    assert count == 9
    assert (await petitions.petition_status(demo, view.ref)).progress.signatures == 9


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
