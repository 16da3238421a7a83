"""The whole bot through a real Synapse: it builds the party's rooms, answers commands in
an encrypted room, and handles a command sent while it was down exactly once."""

from __future__ import annotations

import asyncio

from harmony_matrix.storage.models import HandledEvent
from tests.matrix.bot_runner import bot_config, replies_to, reply_to, room_of, running
from tests.matrix.party import local_party


async def test_the_bot_builds_rooms_and_answers_in_an_encrypted_room(
    ctx, register_user, member_client, tmp_path
):
    party = await local_party(ctx, register_user)
    config = bot_config(party.bot, tmp_path / "store")
    async with running(config, ctx):
        room_id = await room_of(ctx, "working-group")
        ann = await member_client(party.ann)
        await ann.wait_for_invite(room_id, within=30)
        await ann.join(room_id)
        assert ann.client.rooms[room_id].encrypted

        asked = await ann.send_text(room_id, "!whoami")
        answer = await reply_to(ann, room_id, asked)
        assert "Test Working Group" in answer.body
        assert answer.source["content"]["m.mentions"] == {"user_ids": [ann.user_id]}
        # Her display name is her own text: escaped, never markup.
        assert "&lt;b&gt;" in answer.source["content"].get("formatted_body", "&lt;b&gt;")

        asked = await ann.send_text(room_id, "!assembly")
        assert "HPUK-ASSE-2025-09-4" in (await reply_to(ann, room_id, asked)).body

        asked = await ann.send_text(room_id, "!quorum")
        assert "4" in (await reply_to(ann, room_id, asked)).body

        asked = await ann.send_text(room_id, "!help")
        assert "!whoami" in (await reply_to(ann, room_id, asked)).body

        asked = await ann.send_text(room_id, "!whoamii")
        misuse = (await reply_to(ann, room_id, asked)).body
        assert "!whoami" in misuse  # the closest command is suggested

        asked = await ann.send_text(room_id, "!assembly link")
        assert "SLUG" in (await reply_to(ann, room_id, asked)).body  # the usage line

        # Ben joins after the bot has spoken in the room: its next answer is readable
        # by his devices too (a new room key, shared with the members of the moment).
        ben = await member_client(party.ben)
        await ben.wait_for_invite(room_id, within=30)
        await ben.join(room_id)
        asked = await ben.send_text(room_id, "!whoami")
        answer = await reply_to(ben, room_id, asked)
        assert answer.decrypted and "Participant" in answer.body


async def test_a_command_sent_while_the_bot_was_down_is_answered_once(
    ctx, register_user, member_client, tmp_path
):
    party = await local_party(ctx, register_user)
    config = bot_config(party.bot, tmp_path / "store")
    async with running(config, ctx):
        room_id = await room_of(ctx, "working-group")
        ann = await member_client(party.ann)
        await ann.wait_for_invite(room_id, within=30)
        await ann.join(room_id)
        before = await ann.send_text(room_id, "!whoami")
        await reply_to(ann, room_id, before)

    # The bot is down: a command waits on the homeserver.
    during = await ann.send_text(room_id, "!whoami")
    await asyncio.sleep(1)
    assert replies_to(ann, during) == []

    async with running(config, ctx):
        await reply_to(ann, room_id, during, within=20)
    async with running(config, ctx):  # and once more: nothing is answered twice
        await asyncio.sleep(2)
    await ann.sync()
    assert len(replies_to(ann, during)) == 1
    assert len(replies_to(ann, before)) == 1
    async with ctx.transaction() as session:
        assert await session.get(HandledEvent, during) is not None
