"""Who should be in which Matrix room, with what say (services/rooms.py), on the demo party."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from harmony_matrix.constitution.eligibility import Status, is_suspended
from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.errors import RuleViolation
from harmony_matrix.services import (
    assembly_rooms,
    debate,
    meetings,
    petitions,
    preparation,
    roll_call,
    rooms,
    things,
)
from harmony_matrix.storage.models import AuditEvent, Person
from tests.services.helpers import (
    ANA,
    BRYN,
    CHLOE,
    DAS,
    DAWID,
    ELIF,
    FARAH,
    GWEN,
    HAMZA,
    IRIS,
    JON,
    MEDIA,
    OUTSIDER_MEMBER,
    OWG,
    to_start,
)


async def test_members_secretaries_and_suspended_people_come_from_the_register(demo):
    plan = await rooms.rooms_plan(demo)
    by_slug = {room.owner: room for room in plan.assemblies}

    assert plan.party_name == demo.party.name and plan.space_id is None
    assert len(plan.people) == 40 and by_slug[OWG].members == plan.people  # everyone
    assert {ANA, CHLOE, GWEN, IRIS} <= by_slug[MEDIA].members
    assert BRYN not in by_slug[MEDIA].members
    assert by_slug[MEDIA].moderators == {ANA}
    assert by_slug[DAS].moderators == {CHLOE}
    assert by_slug[OWG].moderators == {ANA, BRYN}  # Bryn is its moderator, Ana its secretary
    assert plan.muted == {IRIS, JON}
    # Iris's suspension ends on 31 January (midnight in London, which is UTC then).
    assert plan.next_change_at == datetime(2027, 1, 31, tzinfo=UTC)
    assert by_slug[MEDIA].topic == "Getting the word out — " + (
        "Publishes the party's news and keeps members informed."
    )
    assert not by_slug[MEDIA].private


async def test_a_room_is_stored_once_and_an_upgrade_replaces_it(demo):
    media = next(r for r in (await rooms.rooms_plan(demo)).assemblies if r.owner == MEDIA)
    assert await rooms.record_assembly_room(demo, media.owner_id, "!first")
    assert not await rooms.record_assembly_room(demo, media.owner_id, "!second")
    await rooms.record_space(demo, "!space")

    assert await rooms.owner_of(demo, "!first") == MEDIA
    assert await rooms.owner_of(demo, "!space") == "space"
    assert await rooms.replace_room(demo, "!first", "!upgraded") == MEDIA
    assert await rooms.replace_room(demo, "!space", "!space2") == "space"
    assert await rooms.replace_room(demo, "!unknown", "!x") is None
    plan = await rooms.rooms_plan(demo)
    assert plan.space_id == "!space2"
    assert next(r for r in plan.assemblies if r.owner == MEDIA).room_id == "!upgraded"
    async with demo.transaction() as session:
        actions = list(await session.scalars(select(AuditEvent.action)))
    assert actions.count("matrix.room_upgraded") == 2
    assert "matrix.room_created" in actions and "matrix.space_created" in actions


async def test_the_levels_the_bot_set_are_remembered(demo):
    assert await rooms.levels_set_by_bot(demo) == {}
    await rooms.record_levels_set_by_bot(demo, {"!r": {IRIS: [-1, None]}})
    await rooms.record_levels_set_by_bot(demo, {"!r": {IRIS: [-1, 20]}})
    assert await rooms.levels_set_by_bot(demo) == {"!r": {IRIS: [-1, 20]}}


# -- meetings' own rooms ---------------------------------------------------------------

THING_QUESTION = "Shall the Media Working Group caption every video the society makes?"


async def _people(ctx, *, members_only: bool = False) -> set[str]:
    async with ctx.transaction() as session:
        people = await session.scalars(select(Person))
        return {
            p.matrix_id
            for p in people
            if not members_only
            or (
                p.status is Status.MEMBER
                and not is_suspended(p.suspended_from, p.suspended_until, ctx.now())
            )
        }


async def _meeting_room(ctx, ref: str) -> rooms.PlannedRoom | None:
    plan = await rooms.rooms_plan(ctx)
    return next((room for room in plan.meetings if room.owner == ref), None)


async def test_a_thing_of_assemblies_gets_its_room_once_every_assembly_agreed(demo):
    called = await meetings.call_thing(demo, CHLOE, [DAS, MEDIA], THING_QUESTION)
    assert called.awaiting == (MEDIA,)
    assert await _meeting_room(demo, called.ref) is None  # not planned yet: no room
    await things.agree_to_thing(demo, ANA, called.ref)

    room = await _meeting_room(demo, called.ref)
    assert room is not None and room.kind is rooms.RoomKind.MEETING
    # The question is cut on a word, after at most 60 characters.
    shortened = "Shall the Media Working Group caption every video the…"
    assert room.name == f"{called.ref} Thing of Assemblies: {shortened}"
    assert room.topic == THING_QUESTION
    assert room.private and room.room_id is None and not room.closed
    plan = await rooms.rooms_plan(demo)
    by_slug = {r.owner: r for r in plan.assemblies}
    # The members of both assemblies, suspended ones too (muted, as in assembly rooms).
    assert room.members == by_slug[DAS].members | by_slug[MEDIA].members
    assert {HAMZA, ELIF, IRIS} <= room.members and IRIS in plan.muted
    assert BRYN not in room.members and OUTSIDER_MEMBER not in room.members
    # Their secretaries and moderators, and the General Secretary (Ana).
    assert room.moderators == {CHLOE, ANA}
    # The assemblies' rooms are still there, first.
    assert [r.kind for r in plan.rooms] == [rooms.RoomKind.ASSEMBLY] * 7 + [rooms.RoomKind.MEETING]


async def test_the_general_secretary_moderates_and_is_invited_even_from_outside(demo):
    called = await meetings.call_thing(demo, None, [DAS, "harmony-rec"], "A joint summer fair?")
    room = await _meeting_room(demo, called.ref)
    assert room is not None
    assert room.moderators == {CHLOE, DAWID, ANA}
    assert ANA in room.members  # in neither assembly, but runs Things


async def test_a_party_thing_invites_every_member_not_suspended(demo, clock):
    view = await petitions.start_petition(demo, CHLOE, "Adopt a new logo")
    signers = sorted(await _people(demo, members_only=True) - {CHLOE})
    for signer in signers[: view.progress.threshold - 1]:
        view = await petitions.sign_petition(demo, signer, view.ref)
    assert view.progress.reached
    thing_ref = view.party_thing_ref  # the signature that reached the threshold called it
    assert thing_ref is not None

    room = await _meeting_room(demo, thing_ref)
    assert room is not None
    assert room.name == f"{thing_ref} Party Thing: Adopt a new logo"
    members = await _people(demo, members_only=True)
    assert room.members == members
    assert IRIS not in room.members and ELIF not in room.members and JON not in room.members
    assert room.moderators == {ANA}
    # When Iris's suspension ends she is a Member like any other: invited then.
    clock.current = datetime(2027, 1, 31, tzinfo=UTC)
    later = await _meeting_room(demo, thing_ref)
    assert later is not None and IRIS in later.members


async def test_a_finished_things_room_is_closed_and_one_without_a_room_gets_none(demo):
    kept = await meetings.call_thing(demo, ANA, [DAS, MEDIA], "Kept?")
    dropped = await meetings.call_thing(demo, ANA, [DAS, MEDIA], "Dropped?")
    assert await rooms.record_meeting_room(demo, 1, "!kept")
    assert not await rooms.record_meeting_room(demo, 1, "!other")
    assert await rooms.owner_of(demo, "!kept") == kept.ref

    await meetings.cancel_meeting(demo, ANA, kept.ref, "No longer needed")
    await meetings.cancel_meeting(demo, ANA, dropped.ref, "No longer needed")

    plan = await rooms.rooms_plan(demo)
    assert [(r.owner, r.room_id, r.closed) for r in plan.meetings] == [(kept.ref, "!kept", True)]
    # A meeting's room is not an assembly's too.
    with pytest.raises(RuleViolation, match=f"room of meeting {kept.ref}"):
        await assembly_rooms.link_room(demo, ANA, MEDIA, "!kept")
    assert await rooms.replace_room(demo, "!kept", "!kept2") == kept.ref
    assert (await _meeting_room(demo, kept.ref)).room_id == "!kept2"


async def test_a_thing_that_reached_consensus_has_its_room_closed(demo):
    # The Disability Activism Society has three members: a quorum of three it can reach.
    demo.rules = replace(demo.rules, small_assembly_quorum=3)
    called = await meetings.call_thing(demo, ANA, [DAS, MEDIA], "Caption every video?")
    await rooms.record_meeting_room(demo, 1, "!thing")
    await preparation.schedule(
        demo,
        ANA,
        called.ref,
        demo.now() + timedelta(days=10),
        online_url="https://meet.example/thing",
        accessibility="Captions",
    )
    for step in (PreparationStep.FACTS, PreparationStep.MATERIALS):
        await preparation.record_preparation(demo, ANA, called.ref, step, "Ready")
    await preparation.notify(demo, ANA, called.ref)
    await to_start(demo, called.ref)
    await roll_call.open_meeting(demo, ANA, called.ref)
    for who in (ANA, CHLOE, FARAH, HAMZA, GWEN, ELIF):
        await roll_call.record_attendance(demo, ANA, called.ref, who)
    open_room = await _meeting_room(demo, called.ref)
    assert open_room is not None and not open_room.closed
    await debate.start_debate(demo, ANA, called.ref)
    await debate.add_option(demo, ANA, called.ref, "Yes, every video")
    assert (await debate.end_debate(demo, ANA, called.ref)).phase is Phase.CONSENSUS

    room = await _meeting_room(demo, called.ref)
    assert room is not None and room.closed and room.room_id == "!thing"
    assert room.members == open_room.members  # kept: they read the record
