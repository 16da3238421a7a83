"""The outbox sender through a real Synapse: encrypted direct messages that an invited
member can read, one room per member, exactly once across SIGKILL and SIGTERM, ballot
links that work, members who block invitations, members who do not exist."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update

from harmony_matrix.bot.direct import raw_request
from harmony_matrix.bot.sender import OutboxSender
from harmony_matrix.i18n import _
from harmony_matrix.services import ballots, delivery, records
from harmony_matrix.storage.models import Assembly, OutboxMessage, Person
from tests.ballots.helpers import meeting_at_vote, voters
from tests.conftest import read_english
from tests.matrix.member import bodies_in
from tests.matrix.outbox import sent_count, wait_until_sent
from tests.matrix.sender_process import bot_client
from tests.services.helpers import ANA, GWEN, OWG

ROOT = Path(__file__).resolve().parents[2]


def write_session(directory: Path, user) -> Path:
    path = directory / "bot-session.json"
    path.write_text(
        json.dumps(
            {
                "homeserver": user.homeserver,
                "user_id": user.user_id,
                "device_id": user.device_id,
                "access_token": user.access_token,
                "store_path": str(directory / "bot-store"),
            }
        ),
        encoding="utf-8",
    )
    return path


async def bot(tmp_path, user):
    return await bot_client(json.loads(write_session(tmp_path, user).read_text()))


async def queue_direct(ctx, matrix_id: str, text: str, key: str) -> int:
    async with ctx.transaction() as session:
        await records.enqueue(
            session,
            ctx.now(),
            destination=matrix_id,
            is_direct=True,
            message=_(text),
            language="en",
            dedupe_key=key,
        )
        return await session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key))


async def row(ctx, outbox_id):
    async with ctx.transaction() as session:
        found = await session.get(OutboxMessage, outbox_id)
        session.expunge(found)
        return found


async def test_a_direct_message_arrives_encrypted_and_the_next_reuses_its_room(
    ctx, tmp_path, register_user, member_client
):
    bot_user = await register_user("bot", admin=True)
    alice = await member_client(await register_user("alice"))
    client = await bot(tmp_path, bot_user)
    try:
        sender = OutboxSender(client, ctx)
        assert await sender.lift_rate_limits()  # the bot is a server admin
        first = await queue_direct(ctx, alice.user_id, "Your first message", "dm:1")
        assert await sender.drain_once() == 1
        room_id = await delivery.direct_room(ctx, alice.user_id)
        assert room_id is not None

        # Alice was only invited when it was sent, and still reads it once she joins.
        await alice.wait_for_invite(room_id)
        invite = await client.room_get_state_event(room_id, "m.room.member", alice.user_id)
        assert invite.content["membership"] == "invite" and invite.content["is_direct"] is True
        await alice.join(room_id)
        event = await alice.wait_for_text(room_id, "Your first message")
        assert event.decrypted  # it came encrypted
        content = event.source["content"]
        assert content["msgtype"] == "m.text"
        assert content["m.mentions"] == {"user_ids": [alice.user_id]}
        assert alice.user_id in content["body"]
        assert (await row(ctx, first)).event_id == event.event_id

        # The room is private, the member is not a creator, and it is in m.direct.
        create = await client.room_get_state_event(room_id, "m.room.create")
        assert not create.content.get("additional_creators")
        joins = await client.room_get_state_event(room_id, "m.room.join_rules")
        assert joins.content["join_rule"] == "invite"
        status, direct = await raw_request(
            client, "GET", ["user", client.user_id, "account_data", "m.direct"]
        )
        assert status == 200 and direct[alice.user_id] == [room_id]

        # The second message goes to the same room.
        second = await queue_direct(ctx, alice.user_id, "Your second message", "dm:2")
        assert await sender.drain_once() == 1
        await alice.wait_for_text(room_id, "Your second message")
        assert await delivery.direct_room(ctx, alice.user_id) == room_id

        # "Crashed before it was marked sent": sent again with the same transaction ID,
        # the homeserver returns the first event; Alice sees one copy.
        async with ctx.transaction() as session:
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == second).values(sent_at=None)
            )
        event_id = (await row(ctx, second)).event_id
        assert await sender.drain_once() == 1
        assert (await row(ctx, second)).event_id == event_id
        bodies = await bodies_in(alice, room_id)
        assert [b for b in bodies if "message" in b] == [
            f"{alice.user_id}: Your first message",
            f"{alice.user_id}: Your second message",
        ]
    finally:
        await client.close()


def start_sender(session_file: Path, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.matrix.sender_process", str(session_file), database_url],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.database_matters
async def test_fifty_direct_messages_exactly_once_across_sigkill_and_sigterm(
    ctx, database_url, tmp_path, register_user, member_client
):
    bot_user = await register_user("bot", admin=True)
    members = [await member_client(await register_user(f"m{i}")) for i in range(5)]
    expected = {}
    for number in range(10):
        for member in members:
            text = f"Message {number} for {member.user.localpart}"
            await queue_direct(ctx, member.user_id, text, f"fifty:{number}:{member.user_id}")
            expected.setdefault(member.user_id, []).append(f"{member.user_id}: {text}")
    session_file = write_session(tmp_path, bot_user)
    log = tmp_path / "sender.log"

    killed = start_sender(session_file, database_url, log)
    try:
        await wait_until_sent(ctx, 12, killed)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    after_kill = await sent_count(ctx)

    stopped = start_sender(session_file, database_url, log)
    try:
        await wait_until_sent(ctx, after_kill + 12, stopped)
    finally:
        stopped.send_signal(signal.SIGTERM)
        assert stopped.wait(timeout=60) == 0  # a clean stop, the message in hand finished
    assert 0 < after_kill < await sent_count(ctx) < 50

    finishing = start_sender(session_file, database_url, log)
    assert await asyncio.to_thread(finishing.wait, 180) == 0
    assert await sent_count(ctx) == 50, log.read_text()

    for member in members:
        room_id = await delivery.direct_room(ctx, member.user_id)
        assert room_id is not None
        await member.wait_for_invite(room_id)
        await member.join(room_id)
        bodies = [b for b in await bodies_in(member, room_id) if "Message" in b]
        assert sorted(bodies) == sorted(expected[member.user_id])  # each once, no more


async def test_a_ballot_link_sent_by_direct_message_works(
    demo, tmp_path, register_user, member_client
):
    ctx = demo
    bot_user = await register_user("bot", admin=True)
    ana = await member_client(await register_user("voter"))
    present = await voters(ctx, 9)
    async with ctx.transaction() as session:  # a voter of the demo party, on this homeserver
        await session.execute(
            update(Person).where(Person.matrix_id == present[1]).values(matrix_id=ana.user_id)
        )
    present[1] = ana.user_id
    ref = await meeting_at_vote(ctx, present)
    await ballots.open_ballot(ctx, ANA, ref)
    async with ctx.transaction() as session:
        outbox_id = await session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.voting_right_id.is_not(None),
                OutboxMessage.destination == ana.user_id,
            )
        )
    client = await bot(tmp_path, bot_user)
    try:
        sender = OutboxSender(client, ctx)
        pending = await delivery.pending(ctx, outbox_id)
        assert pending is not None and await sender.send(pending)
        room_id = await delivery.direct_room(ctx, ana.user_id)
        await ana.wait_for_invite(room_id)
        await ana.join(room_id)
        event = await ana.wait_for_text(room_id, "/vote/")
        assert event.decrypted and event.source["content"]["msgtype"] == "m.text"
        link = next(word for word in event.body.split() if "/vote/" in word)
        receipt = await ballots.cast_ballot(ctx, link.rsplit("/vote/", 1)[1], {1: 5, 2: 3, 3: 0})
        assert receipt
        assert (await row(ctx, outbox_id)).event_id == event.event_id
    finally:
        await client.close()


async def test_a_member_who_blocks_invites_is_asked_to_open_a_direct_message(
    demo, tmp_path, register_user, member_client
):
    ctx = demo
    await read_english(ctx)
    bot_user = await register_user("bot")  # not an admin: admins' invitations get through
    gwen = await member_client(await register_user("gwen"))
    client = await bot(tmp_path, bot_user)
    try:
        # The OWG's room, which Gwen joined before she blocked invitations.
        owg_room = (await client.room_create(name="OWG", invite=[gwen.user_id])).room_id
        await gwen.join(owg_room)
        status, _ = await raw_request(
            gwen.client,
            "PUT",
            ["user", gwen.user_id, "account_data", "m.invite_permission_config"],
            {"default_action": "block"},
        )
        assert status == 200
        async with ctx.transaction() as session:
            await session.execute(
                update(Assembly).where(Assembly.slug == OWG).values(matrix_room_id=owg_room)
            )
            await session.execute(
                update(Person).where(Person.matrix_id == GWEN).values(matrix_id=gwen.user_id)
            )
        waiting = await queue_direct(ctx, gwen.user_id, "A message for Gwen", "blocked:1")

        sender = OutboxSender(client, ctx)
        assert await sender.drain_once() == 1  # only the notice in the OWG's room
        assert (await row(ctx, waiting)).last_error == "M_INVITE_BLOCKED"
        assert await delivery.direct_room(ctx, gwen.user_id) is None
        notice = await gwen.wait_for_text(owg_room, "start a direct message with me")
        assert notice.source["content"]["m.mentions"] == {"user_ids": [gwen.user_id]}
        assert await sender.drain_once() == 0  # told once; her message waits

        # Gwen opens a direct room with the bot: the message follows at once.
        dm = await gwen.create_room(invite=(client.user_id,))
        assert await sender.on_dm_invite(dm, gwen.user_id)
        assert await sender.drain_once() == 1
        await gwen.wait_for_text(dm, "A message for Gwen")
        assert await delivery.direct_room(ctx, gwen.user_id) == dm
    finally:
        await client.close()


async def test_a_member_who_does_not_exist_is_reported_not_retried(
    demo, tmp_path, register_user, synapse
):
    ctx = demo
    bot_user = await register_user("bot", admin=True)
    nobody = synapse.user_id("nobody-here")
    async with ctx.transaction() as session:
        await session.execute(
            update(Person).where(Person.matrix_id == GWEN).values(matrix_id=nobody)
        )
    outbox_id = await queue_direct(ctx, nobody, "Hello?", "nobody:1")
    client = await bot(tmp_path, bot_user)
    try:
        sender = OutboxSender(client, ctx)
        assert await sender.drain_once() == 0
    finally:
        await client.close()
    failed = await row(ctx, outbox_id)
    assert failed.failed_at is not None, failed.last_error
    async with ctx.transaction() as session:
        reports = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedupe_key.startswith("undelivered:"))
            )
        )
    assert reports and all(nobody in r.body for r in reports)
    assert ANA in {r.destination for r in reports}


async def test_a_member_who_left_is_invited_back_and_one_who_refuses_is_reported(
    demo, tmp_path, register_user, member_client
):
    ctx = demo
    bot_user = await register_user("bot", admin=True)
    gwen = await member_client(await register_user("gwen"))
    async with ctx.transaction() as session:
        await session.execute(
            update(Person).where(Person.matrix_id == GWEN).values(matrix_id=gwen.user_id)
        )
    client = await bot(tmp_path, bot_user)
    try:
        sender = OutboxSender(client, ctx)
        await queue_direct(ctx, gwen.user_id, "Before you left", "left:1")
        assert await sender.drain_once() == 1
        room_id = await delivery.direct_room(ctx, gwen.user_id)
        await gwen.wait_for_invite(room_id)
        await gwen.join(room_id)
        await gwen.wait_for_text(room_id, "Before you left")
        await gwen.client.room_leave(room_id)

        # She left: invited back to the same room, where the message waits for her.
        await queue_direct(ctx, gwen.user_id, "After you left", "left:2")
        assert await sender.drain_once() == 1
        assert await delivery.direct_room(ctx, gwen.user_id) == room_id
        await gwen.wait_for_invite(room_id)
        await gwen.join(room_id)
        await gwen.wait_for_text(room_id, "After you left")

        # She leaves again and turns the next invitation down: she refuses the room.
        await gwen.client.room_leave(room_id)
        await queue_direct(ctx, gwen.user_id, "Third", "left:3")
        assert await sender.drain_once() == 1
        await gwen.wait_for_invite(room_id)
        await gwen.client.room_leave(room_id)  # rejects the invitation
        refused = await queue_direct(ctx, gwen.user_id, "Fourth", "left:4")
        await sender.drain_once()
        assert (await row(ctx, refused)).failed_at is not None
        assert await delivery.direct_room(ctx, gwen.user_id) is None
        async with ctx.transaction() as session:
            reports = list(
                await session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.dedupe_key.startswith(f"undelivered:{refused}:")
                    )
                )
            )
        assert reports and ANA in {r.destination for r in reports}
    finally:
        await client.close()


async def test_after_a_day_the_restarted_bot_finds_its_encrypted_message_in_the_room(
    ctx, tmp_path, register_user, member_client
):
    bot_user = await register_user("bot", admin=True)
    alice = await member_client(await register_user("alice"))
    outbox_id = await queue_direct(ctx, alice.user_id, "Sent before the crash", "day:1")
    client = await bot(tmp_path, bot_user)
    try:
        assert await OutboxSender(client, ctx).drain_once() == 1
    finally:
        await client.close()
    event_id = (await row(ctx, outbox_id)).event_id
    async with ctx.transaction() as session:  # crashed before it was marked sent...
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == outbox_id).values(sent_at=None)
        )
    ctx.clock.advance(hours=25)  # ...and came back a day later

    restarted = await bot(tmp_path, bot_user)
    sends = []
    real_send = restarted.room_send

    async def counting_send(*args, **kwargs):
        sends.append(kwargs.get("tx_id"))
        return await real_send(*args, **kwargs)

    restarted.room_send = counting_send  # type: ignore[method-assign]
    try:
        assert await OutboxSender(restarted, ctx).drain_once() == 1
    finally:
        await restarted.close()
    assert sends == []  # found in the room (decrypted with its own session): not sent again
    assert (await row(ctx, outbox_id)).event_id == event_id
