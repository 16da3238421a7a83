"""Who should be in which Matrix room, with what say (services/rooms.py), on the demo party."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from harmony_matrix.services import rooms
from harmony_matrix.storage.models import AuditEvent
from tests.services.helpers import ANA, BRYN, CHLOE, DAS, GWEN, IRIS, JON, MEDIA, OWG


async def test_members_secretaries_and_suspended_people_come_from_the_register(demo):
    plan = await rooms.rooms_plan(demo)
    by_slug = {room.slug: room for room in plan.assemblies}

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
    media = next(r for r in (await rooms.rooms_plan(demo)).assemblies if r.slug == MEDIA)
    assert await rooms.record_assembly_room(demo, media.assembly_id, "!first")
    assert not await rooms.record_assembly_room(demo, media.assembly_id, "!second")
    await rooms.record_space(demo, "!space")

    assert await rooms.owner_of(demo, "!first") == MEDIA
    assert await rooms.owner_of(demo, "!space") == "space"
    assert await rooms.replace_room(demo, "!first", "!upgraded") == MEDIA
    assert await rooms.replace_room(demo, "!space", "!space2") == "space"
    assert await rooms.replace_room(demo, "!unknown", "!x") is None
    plan = await rooms.rooms_plan(demo)
    assert plan.space_id == "!space2"
    assert next(r for r in plan.assemblies if r.slug == MEDIA).room_id == "!upgraded"
    async with demo.transaction() as session:
        actions = list(await session.scalars(select(AuditEvent.action)))
    assert actions.count("matrix.room_upgraded") == 2
    assert "matrix.room_created" in actions and "matrix.space_created" in actions


async def test_the_levels_the_bot_set_are_remembered(demo):
    assert await rooms.levels_set_by_bot(demo) == {}
    await rooms.record_levels_set_by_bot(demo, {"!r": {IRIS: [-1, None]}})
    await rooms.record_levels_set_by_bot(demo, {"!r": {IRIS: [-1, 20]}})
    assert await rooms.levels_set_by_bot(demo) == {"!r": {IRIS: [-1, 20]}}
