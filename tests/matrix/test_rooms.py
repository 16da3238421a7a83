"""The Space and the assembly rooms kept in step with the register, through a real Synapse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import pytest
from sqlalchemy import select

from harmony_matrix.bot.power import MODERATOR
from harmony_matrix.bot.room_state import RoomState, parse_state
from harmony_matrix.bot.rooms import Problem, RoomKeeper
from harmony_matrix.importers.assemblies_toml import parse_assemblies
from harmony_matrix.importers.members_csv import parse_members
from harmony_matrix.services import registry
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import Assembly, MatrixState
from tests.matrix.member import MatrixTestError, Member

ASSEMBLIES = """
[[assembly]]
slug = "garden"
name = "Garden Working Group"
subtitle = "Growing things"
purpose = "Looks after the party's gardens."
reference = "HPUK-ASSE-2025-09-1"
kind = "working_group"
visibility = "public"
open = true

[[assembly]]
slug = "council"
name = "Council"
purpose = "Decides on money."
reference = "HPUK-ASSE-2025-09-2"
kind = "committee"
visibility = "private"
open = false
"""
HEADER = "matrix_id,display_name,status,language,suspended_from,suspended_until,assemblies\n"
#: The tests' clock starts on 2026-11-02: Iris is suspended until 5 November.
SUSPENSION_ENDS = datetime(2026, 11, 5, tzinfo=UTC)


@dataclass
class Party:
    keeper: RoomKeeper
    bot: Member
    ana: Member  # secretary of the garden, member of the council
    bryn: Member  # garden
    iris: Member  # garden, suspended


async def import_people(ctx: ServiceContext, csv: str) -> None:
    rows, problems = parse_members(HEADER + csv, ctx.party.timezone)
    report = await registry.import_people(ctx, rows, problems, apply=True)
    assert report.ok, report.rows


@pytest.fixture
async def party(ctx, register_user, member_client, synapse) -> Party:
    specs, problems = parse_assemblies(ASSEMBLIES, ctx.party.reference_prefix)
    assert (await registry.import_assemblies(ctx, specs, problems, apply=True)).ok
    bot = await member_client(await register_user("harmony"))
    ana, bryn, iris = [
        await member_client(await register_user(name)) for name in ("ana", "bryn", "iris")
    ]
    await import_people(
        ctx,
        f"{ana.user_id},Ana,member,en,,,garden:secretary;council\n"
        f"{bryn.user_id},Bryn,member,cy,,,garden\n"
        f"{iris.user_id},Iris,member,en,2026-11-01,2026-11-05,garden\n",
    )
    keeper = RoomKeeper(bot.client, ctx, server_name=synapse.server_name)
    return Party(keeper, bot, ana, bryn, iris)


async def upgrade(synapse, who: Member, room_id: str) -> str:
    """The server-side room upgrade (``POST /rooms/{id}/upgrade``); the new room's ID."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{synapse.url}/_matrix/client/v3/rooms/{room_id}/upgrade",
            json={"new_version": "12"},
            headers={"Authorization": f"Bearer {who.client.access_token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return str((await response.json())["replacement_room"])


async def state_of(party: Party, room_id: str) -> RoomState:
    response = await party.bot.client.room_get_state(room_id)
    return parse_state(room_id, response.events)


async def room_ids(ctx: ServiceContext) -> tuple[str, dict[str, str]]:
    async with ctx.transaction() as session:
        space = await session.get(MatrixState, "space")
        assemblies = await session.scalars(select(Assembly))
        assert space is not None
        return space.value, {a.slug: a.matrix_room_id for a in assemblies}


async def test_the_space_and_a_room_per_assembly_are_built_linked_and_filled(party, ctx, synapse):
    report = await party.keeper.reconcile()

    space_id, rooms = await room_ids(ctx)
    assert sorted(report.created) == sorted(
        [("space", space_id), ("garden", rooms["garden"]), ("council", rooms["council"])]
    )
    space = await state_of(party, space_id)
    assert set(space.children) == set(rooms.values())
    assert all(child["via"] == [synapse.server_name] for child in space.children.values())
    garden, council = [await state_of(party, rooms[slug]) for slug in ("garden", "council")]
    for room in (garden, council):
        assert list(room.parents) == [space_id]
        assert room.encrypted
        assert room.creators == {party.bot.user_id}  # room version 12
        assert party.bot.user_id not in room.power.users
    assert council.join_rules == {"join_rule": "invite"}
    assert garden.join_rules == {
        "join_rule": "restricted",
        "allow": [{"type": "m.room_membership", "room_id": space_id}],
    }
    # Members invited to their assemblies' rooms, everyone to the Space.
    assert {u for u, m in garden.members.items() if m.membership == "invite"} == {
        party.ana.user_id,
        party.bryn.user_id,
        party.iris.user_id,
    }
    assert {u for u, m in council.members.items() if m.membership == "invite"} == {
        party.ana.user_id
    }
    assert {u for u, m in space.members.items() if m.membership == "invite"} == {
        party.ana.user_id,
        party.bryn.user_id,
        party.iris.user_id,
    }
    # The secretary moderates; the suspended member is muted, until the suspension ends.
    assert garden.power.level(party.ana.user_id) == MODERATOR
    assert garden.power.level(party.iris.user_id) < 0
    assert council.power.level(party.iris.user_id) < 0
    assert report.next_change_at == SUSPENSION_ENDS

    # A member sees the invites and joins.
    await party.bryn.wait_for_invite(rooms["garden"])
    await party.bryn.join(space_id)
    await party.bryn.join(rooms["garden"])

    again = await party.keeper.reconcile()
    assert not again.changed, again


async def test_a_suspended_member_cannot_speak_until_the_suspension_ends(party, ctx):
    await party.keeper.reconcile()
    _, rooms = await room_ids(ctx)
    garden = rooms["garden"]
    for member in (party.ana, party.iris):
        await member.wait_for_invite(garden)
        await member.join(garden)

    with pytest.raises(MatrixTestError) as refused:
        await party.iris.send_text(garden, "Can I speak?")
    assert "M_FORBIDDEN" in str(refused.value)
    await party.ana.send_text(garden, "The secretary can.")

    ctx.clock.current = SUSPENSION_ENDS
    report = await party.keeper.reconcile()
    assert {(c.room_id, c.change.user_id, c.change.new) for c in report.power_changes} == {
        (rooms["garden"], party.iris.user_id, None),
        (rooms["council"], party.iris.user_id, None),
    }
    assert report.next_change_at is None
    await party.iris.send_text(garden, "Thank you, I am back.")
    await party.ana.wait_for_text(garden, "I am back")
    assert not (await party.keeper.reconcile()).changed


async def test_a_register_import_adds_a_member_and_the_next_reconcile_invites_them(
    party, ctx, register_user, member_client
):
    await party.keeper.reconcile()
    _, rooms = await room_ids(ctx)
    newcomer = await member_client(await register_user("newcomer"))
    await import_people(ctx, f"{newcomer.user_id},New,member,en,,,council:secretary\n")

    report = await party.keeper.reconcile()
    assert sorted(report.invited) == [
        ("council", rooms["council"], newcomer.user_id),
        ("space", (await room_ids(ctx))[0], newcomer.user_id),
    ]
    assert [(c.change.user_id, c.change.new) for c in report.power_changes] == [
        (newcomer.user_id, MODERATOR)
    ]
    await newcomer.wait_for_invite(rooms["council"])
    await newcomer.join(rooms["council"])
    assert (await state_of(party, rooms["council"])).members[newcomer.user_id].membership == "join"


async def test_a_member_who_blocks_invites_is_reported_once(
    party, ctx, register_user, member_client, synapse
):
    shy = await member_client(await register_user("shy"))
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"{synapse.url}/_matrix/client/v3/user/{shy.user_id}/account_data/"
            "m.invite_permission_config",
            json={"default_action": "block"},
            headers={"Authorization": f"Bearer {shy.client.access_token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
    await import_people(ctx, f"{shy.user_id},Shy,member,en,,,council\n")

    report = await party.keeper.reconcile()
    failures = {(f.owner, f.user_id, f.errcode, f.blocked) for f in report.invite_failures}
    assert failures == {
        ("space", shy.user_id, "M_INVITE_BLOCKED", True),
        ("council", shy.user_id, "M_INVITE_BLOCKED", True),
    }
    assert not (await party.keeper.reconcile()).changed  # not retried


async def test_an_upgraded_room_is_followed(party, ctx, synapse):
    await party.keeper.reconcile()
    space_id, rooms = await room_ids(ctx)
    old = rooms["garden"]
    await party.bryn.wait_for_invite(old)
    await party.bryn.join(old)
    new = await upgrade(synapse, party.bot, old)

    report = await party.keeper.follow_tombstone(old, new, [synapse.server_name])

    assert report.followed == [("garden", old, new)]
    assert sorted(user for _, room, user in report.invited if room == new) == sorted(
        m.user_id for m in (party.ana, party.bryn, party.iris)
    )
    assert (await room_ids(ctx))[1]["garden"] == new
    space = await state_of(party, space_id)
    assert new in space.children and old not in space.children
    room = await state_of(party, new)
    assert list(room.parents) == [space_id]
    assert room.power.level(party.ana.user_id) == MODERATOR
    assert room.power.level(party.iris.user_id) < 0
    assert all(room.present(m.user_id) for m in (party.ana, party.bryn, party.iris))
    await party.bryn.wait_for_invite(new)
    assert not (await party.keeper.reconcile()).changed


async def test_a_linked_room_where_the_bot_lacks_power_is_reported_once(party, ctx):
    linked = await party.ana.create_room(invite=(party.bot.user_id,), name="Our own room")
    await party.bot.join(linked)
    async with ctx.transaction() as session:
        council = await session.scalar(select(Assembly).where(Assembly.slug == "council"))
        council.matrix_room_id = linked

    report = await party.keeper.reconcile()

    problems = {(p.owner, p.problem) for p in report.problems}
    assert ("council", Problem.CANNOT_SET_POWER_LEVELS) in problems
    assert ("council", Problem.CANNOT_LINK_SPACE) in problems
    assert ("council", Problem.CANNOT_SET_JOIN_RULES) not in problems  # already invite-only
    # The rest of the party's rooms were still built.
    assert {owner for owner, _ in report.created} == {"space", "garden"}
    assert not (await party.keeper.reconcile()).problems


async def test_the_bot_cannot_be_tricked_into_a_room_it_is_not_in(party, ctx):
    """A room ID typed into the register that the bot never joined: reported, not fatal."""
    async with ctx.transaction() as session:
        council = await session.scalar(select(Assembly).where(Assembly.slug == "council"))
        council.matrix_room_id = "!nosuchroom"
    report = await party.keeper.reconcile()
    assert [(p.owner, p.problem) for p in report.problems] == [("council", Problem.NO_ACCESS)]


async def test_an_upgrade_made_while_the_bot_was_away_is_followed_by_the_next_reconcile(
    party, ctx, synapse
):
    await party.keeper.reconcile()
    old = (await room_ids(ctx))[1]["council"]
    new = await upgrade(synapse, party.bot, old)
    report = await party.keeper.reconcile()
    assert report.followed == [("council", old, new)]
    assert (await room_ids(ctx))[1]["council"] == new
    assert ("council", new, party.ana.user_id) in report.invited


async def test_a_member_who_declines_an_invite_is_not_invited_again(party, ctx):
    await party.keeper.reconcile()
    garden = (await room_ids(ctx))[1]["garden"]
    await party.bryn.wait_for_invite(garden)
    await party.bryn.client.room_leave(garden)

    report = await party.keeper.reconcile()

    assert (await state_of(party, garden)).members[party.bryn.user_id].membership == "leave"
    assert not report.changed, report


async def test_an_upgraded_space_is_followed_and_every_room_linked_into_it(party, ctx, synapse):
    await party.keeper.reconcile()
    old, rooms = await room_ids(ctx)
    new = await upgrade(synapse, party.bot, old)

    report = await party.keeper.follow_tombstone(old, new, [synapse.server_name])

    assert report.followed == [("space", old, new)]
    assert (await room_ids(ctx))[0] == new
    space = await state_of(party, new)
    assert set(space.children) == set(rooms.values())
    for room_id in rooms.values():
        assert list((await state_of(party, room_id)).parents) == [new]
    assert space.present(party.iris.user_id)
    assert not (await party.keeper.reconcile()).changed


async def test_an_upgraded_room_the_bot_cannot_join_is_reported_once(party, ctx, synapse):
    linked = await party.ana.create_room(invite=(party.bot.user_id,), name="Our own room")
    await party.bot.join(linked)
    async with ctx.transaction() as session:
        council = await session.scalar(select(Assembly).where(Assembly.slug == "council"))
        council.matrix_room_id = linked
    await party.keeper.reconcile()
    new = await upgrade(synapse, party.ana, linked)  # invite-only, and nobody invites the bot

    report = await party.keeper.follow_tombstone(linked, new, [synapse.server_name])

    assert [(p.owner, p.room_id, p.problem) for p in report.problems] == [
        ("council", new, Problem.CANNOT_JOIN)
    ]
    assert (await room_ids(ctx))[1]["council"] == linked
    assert not (await party.keeper.reconcile()).changed


async def test_an_invite_to_an_unreachable_server_is_tried_again_an_hour_later(party, ctx):
    ghost = "@ghost:unreachable.invalid"
    await import_people(ctx, f"{ghost},Ghost,member,en,,,council\n")
    first = await party.keeper.reconcile()
    assert {(f.owner, f.user_id, f.blocked) for f in first.invite_failures} == {
        ("space", ghost, False),
        ("council", ghost, False),
    }
    assert not (await party.keeper.reconcile()).changed

    ctx.clock.advance(hours=1)
    again = await party.keeper.reconcile()
    assert {(f.owner, f.user_id) for f in again.invite_failures} == {
        ("space", ghost),
        ("council", ghost),
    }
