"""A petition through the whole bot and a real Synapse: started and signed in an
encrypted room, refused to a Participant, and the signature that reaches the threshold
calls the Party Thing, tells the room and sends the General Secretary a direct message."""

from __future__ import annotations

import asyncio

from harmony_matrix.importers.assemblies_toml import parse_assemblies
from harmony_matrix.services import delivery, petitions, registry
from harmony_matrix.services.context import ServiceContext
from tests.matrix.bot_runner import bot_config, reply_to, room_of, running
from tests.matrix.party import ASSEMBLIES, HEADER, _import


async def _direct_room(ctx: ServiceContext, matrix_id: str, within: float = 30.0) -> str:
    deadline = asyncio.get_running_loop().time() + within
    while (room_id := await delivery.direct_room(ctx, matrix_id)) is None:
        assert asyncio.get_running_loop().time() < deadline, f"no direct room for {matrix_id}"
        await asyncio.sleep(0.2)
    return room_id


async def test_a_petition_reaches_its_threshold_in_the_chat(
    ctx, register_user, member_client, tmp_path
):
    bot = await register_user("harmony", admin=True)
    gs, ann, cat, ben = [await register_user(name) for name in ("gs", "ann", "cat", "ben")]
    others = [await register_user(f"m{index}") for index in range(4)]
    specs, problems = parse_assemblies(ASSEMBLIES, ctx.party.reference_prefix)
    assert (await registry.import_assemblies(ctx, specs, problems, apply=True)).ok
    # Seven Members who are not suspended: the threshold is 15% of 7, rounded up: 2.
    rows = [
        HEADER,
        f"{gs.user_id},Gene Secretary,member,en,,,working-group:secretary,general_secretary",
        f"{ann.user_id},Ann Member,member,en,,,working-group,",
        f"{cat.user_id},Cat Member,member,en,,,working-group,",
        f"{ben.user_id},Ben Participant,participant,en,,,working-group,",
        *(f"{user.user_id},Member {user.localpart},member,en,,,," for user in others),
    ]
    await _import(ctx, rows)

    # Logged in before anything is sent to her: her device gets the message's keys.
    general_secretary = await member_client(gs)
    async with running(bot_config(bot, tmp_path / "store"), ctx):
        room_id = await room_of(ctx, "working-group")
        members = {}
        for user in (ann, cat, ben):
            member = await member_client(user)
            await member.wait_for_invite(room_id, within=30)
            await member.join(room_id)
            members[user.user_id] = member

        asked = await members[ann.user_id].send_text(
            room_id, "!petition start Adopt a <b>logo</b> @room"
        )
        started = (await reply_to(members[ann.user_id], room_id, asked)).body
        assert "Petition P-1 is open" in started and "1 of 2 signatures" in started

        asked = await members[ben.user_id].send_text(room_id, "!petition sign")
        refused = (await reply_to(members[ben.user_id], room_id, asked)).body
        assert "Only Members can start or sign a petition" in refused

        asked = await members[cat.user_id].send_text(room_id, "!petition sign")
        signed = (await reply_to(members[cat.user_id], room_id, asked)).body
        assert "2 of 2 signatures" in signed
        assert "called Party Thing M-1, which must be held by" in signed

        # The room is told, and the petition's title stays text: no markup, no mention.
        told = await members[ann.user_id].wait_for_text(
            room_id, "has reached its threshold with 2 signatures", within=30
        )
        assert "Party Thing M-1" in told.body and "Adopt a <b>logo</b> @room" in told.body
        assert "<b>" not in told.source["content"].get("formatted_body", "")
        assert told.source["content"].get("m.mentions", {}) == {}

        # The General Secretary gets a direct message with the Party Thing and its date.
        direct = await _direct_room(ctx, gs.user_id)
        await general_secretary.wait_for_invite(direct, within=30)
        await general_secretary.join(direct)
        message = await general_secretary.wait_for_text(direct, "Party Thing M-1", within=30)
        assert "must be held by" in message.body and "!schedule M-1" in message.body

    status = await petitions.petition_status(ctx, "P-1")
    assert status.party_thing_ref == "M-1" and not status.is_open
