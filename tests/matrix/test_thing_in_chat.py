"""A Thing of Assemblies run in the chat through a real homeserver: called in one
assembly's room, held in a room of its own that the bot makes in the Space, with a
quorum that needs both assemblies, and closed to new messages once its consensus is
recorded."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from nio import RoomSendError, RoomSendResponse
from sqlalchemy import select

from harmony_matrix.importers.assemblies_toml import parse_assemblies
from harmony_matrix.services import consensus, registry
from harmony_matrix.storage.models import Meeting
from tests.matrix.bot_runner import bot_config, room_of, running
from tests.matrix.meeting_script import announcement, local_time, say
from tests.matrix.party import ASSEMBLIES, HEADER, _import

QUESTION = "Should both groups share one newsletter?"


async def two_assemblies(ctx, register_user) -> tuple:
    """A secretary of both assemblies, four more members of the working group and four
    of the committee: each assembly's Moot quorum is 4."""
    bot = await register_user("harmony", admin=True)
    secretary = await register_user("sec")
    group = [await register_user(f"wg{i}") for i in range(3)]
    committee = [await register_user(f"co{i}") for i in range(3)]
    specs, problems = parse_assemblies(ASSEMBLIES, ctx.party.reference_prefix)
    report = await registry.import_assemblies(ctx, specs, problems, apply=True)
    assert report.ok, report.rows
    rows = [
        HEADER,
        f"{secretary.user_id},Sam Secretary,member,en,,,"
        "working-group:secretary;committee:secretary,",
        *(f"{u.user_id},Group {i},member,en,,,working-group," for i, u in enumerate(group)),
        *(f"{u.user_id},Committee {i},member,en,,,committee," for i, u in enumerate(committee)),
    ]
    await _import(ctx, rows)
    return bot, secretary, group, committee


async def thing_room(ctx, within: float = 60.0) -> str:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with ctx.transaction() as session:
            room_id = await session.scalar(select(Meeting.matrix_room_id))
        if room_id:
            return room_id
        assert asyncio.get_running_loop().time() < deadline, "the Thing got no room"
        await asyncio.sleep(0.2)


async def test_a_thing_of_assemblies_in_its_own_room_needs_both_quorums(
    ctx, register_user, member_client, tmp_path
):
    bot, secretary_user, group_users, committee_users = await two_assemblies(ctx, register_user)
    secretary = await member_client(secretary_user)
    group = [await member_client(u) for u in group_users]
    committee = [await member_client(u) for u in committee_users]
    everyone = [secretary, *group, *committee]
    config = bot_config(bot, tmp_path / "store", encrypt_rooms=False)
    async with running(config, ctx):
        group_room = await room_of(ctx, "working-group")
        await secretary.wait_for_invite(group_room, within=60)
        await secretary.join(group_room)
        called = await say(
            secretary, group_room, f"!thing call {QUESTION} --assemblies working-group,committee"
        )
        assert "Every assembly involved has agreed" in called

        room_id = await thing_room(ctx)
        for person in everyone:  # the members of both assemblies are invited
            await person.wait_for_invite(room_id, within=60)
            await person.join(room_id)

        # In the Thing's room its ID may be left out.
        await say(secretary, room_id, "!prepare facts Both newsletters' costs")
        await say(secretary, room_id, "!prepare materials A sample issue")
        day, hour = local_time(ctx.now() + timedelta(days=10))
        scheduled = await say(
            secretary, room_id, f'!schedule {day} {hour} --place "Hall" --access "Step-free"'
        )
        assert "is set for" in scheduled
        assert "people are being told" in await say(secretary, room_id, "!notify")
        async with ctx.transaction() as session:
            starts_at = await session.scalar(select(Meeting.starts_at))
        ctx.clock.current = starts_at
        assert "is open" in await say(secretary, room_id, "!start")

        # The working group's four are present: its quorum is reached, the committee's
        # is not, so the Thing's is not.
        for person in [secretary, *group]:
            quorum = await say(person, room_id, "!here")
        assert "Quorum is not reached yet." in quorum
        assert "Test Working Group: 4 present, 4 needed; reached." in quorum
        assert "Test Committee: 1 present, 4 needed; not reached yet." in quorum
        for person in committee:
            quorum = await say(person, room_id, "!here")
        assert "Quorum is reached." in quorum
        assert "Test Committee: 4 present, 4 needed; reached." in quorum

        await say(committee[0], room_id, "!suggest One shared newsletter, twice a year")
        await say(secretary, room_id, "!debate")
        await say(secretary, room_id, "!option add One shared newsletter, twice a year")
        assert "it is the consensus" in await say(secretary, room_id, "!vote")
        await announcement(group[0], room_id, "Consensus recorded", within=60)
        [entry] = await consensus.list_consensus(ctx)
        assert entry.outcome == "One shared newsletter, twice a year"

        # The record is kept: the room is read-only for everyone but the bot.
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            response = await group[1].client.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": "after"}
            )
            if isinstance(response, RoomSendError):
                assert response.status_code == "M_FORBIDDEN"
                break
            assert isinstance(response, RoomSendResponse)
            assert asyncio.get_running_loop().time() < deadline, "the room stayed open"
            await asyncio.sleep(0.5)
