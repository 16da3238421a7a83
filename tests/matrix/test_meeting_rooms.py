"""A Thing meets in a room of its own, which closes to new messages once consensus is
recorded: the whole bot against a real Synapse."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from harmony_matrix.bot.power import MODERATOR
from harmony_matrix.bot.room_state import RoomState, parse_state
from harmony_matrix.bot.rooms import RoomKeeper
from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.i18n import verbatim
from harmony_matrix.services import debate, meetings, preparation, records, roll_call
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import MatrixState, Meeting
from tests.matrix.bot_runner import bot_config, running
from tests.matrix.member import MatrixTestError
from tests.matrix.party import local_party
from tests.matrix.test_rooms import upgrade

QUESTION = "Should the working group and the committee share one budget?"


async def room_of_meeting(ctx: ServiceContext, meeting_id: int, within: float = 30.0) -> str:
    """The room the bot made for a meeting (it makes them just after it starts)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with ctx.transaction() as session:
            room_id = await session.scalar(
                select(Meeting.matrix_room_id).where(Meeting.id == meeting_id)
            )
        if room_id:
            return room_id
        assert asyncio.get_running_loop().time() < deadline, f"no room for M-{meeting_id}"
        await asyncio.sleep(0.2)


async def space_of(ctx: ServiceContext) -> str:
    async with ctx.transaction() as session:
        space = await session.get(MatrixState, "space")
        assert space is not None
        return space.value


async def to_consensus(ctx: ServiceContext, secretary: str, ref: str) -> None:
    """Prepare, hold and decide the meeting through the services, with one option."""
    await preparation.schedule(
        ctx,
        secretary,
        ref,
        ctx.now() + timedelta(days=10),
        online_url="https://meet.example/thing",
        accessibility="Live captions",
    )
    for step in (PreparationStep.FACTS, PreparationStep.MATERIALS):
        await preparation.record_preparation(ctx, secretary, ref, step, "Ready")
    await preparation.notify(ctx, secretary, ref)
    ctx.clock.current += timedelta(days=10)  # type: ignore[attr-defined]  # the tests' Clock
    await roll_call.open_meeting(ctx, secretary, ref)
    await roll_call.record_attendance(ctx, secretary, ref)
    await debate.start_debate(ctx, secretary, ref)
    await debate.add_option(ctx, secretary, ref, "One shared budget")
    assert (await debate.end_debate(ctx, secretary, ref)).phase is Phase.CONSENSUS


async def test_a_thing_meets_in_its_own_room_which_closes_at_consensus(
    ctx, register_user, member_client, tmp_path
):
    # A quorum of one, so that the secretary alone makes the Thing quorate.
    ctx.rules = replace(ctx.rules, small_assembly_quorum=1)
    party = await local_party(ctx, register_user)
    # The secretary of both assemblies calls it: both have agreed.
    called = await meetings.call_thing(
        ctx, party.secretary.user_id, ["working-group", "committee"], QUESTION
    )
    assert called.awaiting == ()
    meeting_id = int(called.ref.removeprefix("M-"))

    async with running(bot_config(party.bot, tmp_path / "store"), ctx) as bot:
        room_id = await room_of_meeting(ctx, meeting_id)
        space_id = await space_of(ctx)
        # Waits for the bot's first pass to finish (one at a time): nothing left to do.
        assert not (await bot.rooms.reconcile()).changed

        async def state() -> RoomState:
            response = await bot.client.room_get_state(room_id)
            return parse_state(room_id, response.events)

        room = await state()
        assert list(room.parents) == [space_id]
        space = parse_state(space_id, (await bot.client.room_get_state(space_id)).events)
        assert room_id in space.children
        assert room.encrypted and room.join_rules == {"join_rule": "invite"}
        assert room.creators == {party.bot.user_id}
        # Every member of both assemblies is invited; the outsider is not.
        members = {
            party.secretary.user_id,
            party.ann.user_id,
            party.ben.user_id,
            party.suspended.user_id,
        }
        assert {u for u, m in room.members.items() if m.membership == "invite"} == members
        assert party.outsider.user_id not in room.members
        assert room.power.level(party.secretary.user_id) == MODERATOR
        assert room.power.level(party.suspended.user_id) < 0  # muted, as everywhere

        ann = await member_client(party.ann)
        await ann.wait_for_invite(room_id, within=30)
        await ann.join(room_id)
        await ann.send_text(room_id, "I am here for the Thing.")

        await to_consensus(ctx, party.secretary.user_id, called.ref)
        # A command that records consensus asks for this at once (Reply.rooms_changed).
        report = await bot.rooms.reconcile()
        assert report.closed == [(called.ref, room_id)]
        assert not report.invited

        with pytest.raises(MatrixTestError) as refused:
            await ann.send_text(room_id, "One more thing!")
        assert "M_FORBIDDEN" in str(refused.value)
        closed = await state()
        assert closed.members[ann.user_id].membership == "join"  # she keeps the record
        assert closed.power.level(party.secretary.user_id) == MODERATOR

        # The bot still posts there (through its outbox, as every announcement).
        async with ctx.transaction() as session:
            await records.enqueue(
                session,
                ctx.now(),
                destination=room_id,
                is_direct=False,
                message=verbatim("The record of this Thing is kept here."),
                language="en",
                dedupe_key="test:closed-room",
            )
        bot.sender.wake()
        await ann.wait_for(
            lambda event: "record of this Thing" in getattr(event, "body", ""),
            room_id=room_id,
            within=30,
        )
        assert not (await bot.rooms.reconcile()).changed


async def test_an_upgraded_meeting_room_is_followed_and_a_cancelled_one_closed(
    ctx, register_user, member_client, synapse
):
    party = await local_party(ctx, register_user)
    bot = await member_client(party.bot)
    keeper = RoomKeeper(bot.client, ctx, server_name=synapse.server_name)
    called = await meetings.call_thing(
        ctx, party.secretary.user_id, ["working-group", "committee"], QUESTION
    )
    await keeper.reconcile()
    old = await room_of_meeting(ctx, int(called.ref.removeprefix("M-")))
    new = await upgrade(synapse, bot, old)

    report = await keeper.follow_tombstone(old, new, [synapse.server_name])

    assert report.followed == [(called.ref, old, new)]
    assert await room_of_meeting(ctx, int(called.ref.removeprefix("M-"))) == new
    space_id = await space_of(ctx)
    space = parse_state(space_id, (await bot.client.room_get_state(space_id)).events)
    assert new in space.children and old not in space.children
    room = parse_state(new, (await bot.client.room_get_state(new)).events)
    assert list(room.parents) == [space_id]
    assert room.present(party.ann.user_id) and room.present(party.secretary.user_id)

    await meetings.cancel_meeting(ctx, party.secretary.user_id, called.ref, "Not needed")
    assert (await keeper.reconcile()).closed == [(called.ref, new)]
    again = await keeper.reconcile()
    assert not again.changed, again

    # A closed room is still linked into an upgraded Space: the record stays findable.
    new_space = await upgrade(synapse, bot, space_id)
    followed = await keeper.follow_tombstone(space_id, new_space, [synapse.server_name])
    assert followed.followed == [("space", space_id, new_space)]
    closed = parse_state(new, (await bot.client.room_get_state(new)).events)
    assert list(closed.parents) == [new_space]
    assert not followed.closed  # still closed: nothing to send
