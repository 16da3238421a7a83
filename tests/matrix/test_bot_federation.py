"""The whole bot on one homeserver, a member on another: the member is invited over
federation to the assembly's encrypted room, joins, gets answers they can decrypt, and
receives a direct message from the outbox."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from harmony_matrix.i18n import _
from harmony_matrix.services import delivery, records
from harmony_matrix.services.lookup import person_by_matrix_id
from harmony_matrix.storage.models import OutboxMessage
from tests.matrix.bot_runner import bot_config, reply_to, room_of, running
from tests.matrix.member import bodies_in
from tests.matrix.party import members_of_working_group


async def direct_room_of(ctx, matrix_id: str, within: float = 30.0) -> str:
    deadline = asyncio.get_running_loop().time() + within
    while (room_id := await delivery.direct_room(ctx, matrix_id)) is None:
        assert asyncio.get_running_loop().time() < deadline, f"no direct room for {matrix_id}"
        await asyncio.sleep(0.2)
    return room_id


async def test_a_member_on_another_homeserver_is_invited_answered_and_messaged(
    ctx, federated_synapses, register_user, member_client, tmp_path
):
    hs1, hs2 = federated_synapses
    bot_user = await register_user("harmony", server=hs1, admin=True)
    far_user = await register_user("far", server=hs2)
    assert far_user.user_id.endswith(f":{hs2.server_name}")
    await members_of_working_group(ctx, [far_user])

    async with running(bot_config(bot_user, tmp_path / "store"), ctx):
        room_id = await room_of(ctx, "working-group")
        far = await member_client(far_user)
        await far.wait_for_invite(room_id, within=30)  # a federated invite
        await far.join(room_id)  # over federation
        assert far.client.rooms[room_id].encrypted

        asked = await far.send_text(room_id, "!whoami")
        answer = await reply_to(far, room_id, asked, within=30)  # decrypted by the member
        assert "Test Working Group" in answer.body
        assert answer.source["content"]["msgtype"] == "m.notice"
        assert answer.source["content"]["m.mentions"] == {"user_ids": [far.user_id]}

        async with ctx.transaction() as session:
            person = await person_by_matrix_id(session, far.user_id)
            await records.direct_message(
                session,
                ctx.now(),
                person,
                message=_("A word across servers"),
                dedupe_key="federation:dm",
            )
        dm_id = await direct_room_of(ctx, far.user_id)
        # The member joins once the message is in the room, as a member reading it later
        # would. (Joining in the very moment it is sent is a race between the homeservers,
        # seen here: the message and the join both follow the invite, the bot's server
        # does not send the message to a server not yet in the room, and the member's
        # server never backfills it, since it is no ancestor of the join. It shows up only
        # when a later event in the room refers to it.)
        await sent(ctx, "federation:dm")
        await far.wait_for_invite(dm_id, within=30)
        await far.join(dm_id)
        assert far.client.rooms[dm_id].encrypted
        # Joined over federation, the member's homeserver holds the room's state but not
        # its earlier messages: they are read with /messages (backfilled), as clients do.
        found = await read_eventually(far, dm_id, "A word across servers")
        assert found == [f"{far.user_id}: A word across servers"]


async def sent(ctx, dedupe_key: str, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with ctx.transaction() as session:
            sent_at = await session.scalar(
                select(OutboxMessage.sent_at).where(OutboxMessage.dedupe_key == dedupe_key)
            )
        if sent_at is not None:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{dedupe_key} not sent"
        await asyncio.sleep(0.1)


async def read_eventually(member, room_id: str, contains: str, within: float = 30.0):
    """The room's messages that contain ``contains``, once there is one and every message
    decrypts (the room key travels over federation as a to-device message, maybe later)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            found = [body for body in await bodies_in(member, room_id) if contains in body]
        except AssertionError:  # not decryptable yet
            if asyncio.get_running_loop().time() > deadline:
                raise
            found = []
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await member.sync(timeout_ms=500)
