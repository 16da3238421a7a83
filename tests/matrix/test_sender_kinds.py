"""The outbox sender's files, pinned messages and meeting messages through a real
Synapse: a calendar file a member downloads and decrypts from an encrypted direct room,
a pinned message edited twice, and a Thing's announcement that waits for its room."""

from __future__ import annotations

from typing import Any

from nio import RoomEncryptedFile, RoomGetStateEventResponse, RoomPutStateResponse
from nio.crypto import decrypt_attachment
from sqlalchemy import select, update

from harmony_matrix.bot.direct import raw_request
from harmony_matrix.bot.sender import OutboxSender
from harmony_matrix.i18n import _
from harmony_matrix.services import delivery, meetings, records
from harmony_matrix.services.announcements import announce
from harmony_matrix.storage.models import Meeting, OutboxMessage
from tests.matrix.member import ENCRYPTION, Member
from tests.matrix.test_sender import bot, row
from tests.services.helpers import ANA, MEDIA, OWG

ICS = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Harmony//EN\r\nBEGIN:VEVENT\r\n"
    b"UID:M-12@harmony\r\nSUMMARY:Operational Working Group Moot\r\n"
    b"DTSTART;TZID=Europe/London:20261112T190000\r\nLOCATION:Community Hall\r\n"
    b"END:VEVENT\r\nEND:VCALENDAR\r\n"
)


async def queue(ctx, destination: str, key: str, *, is_direct: bool, **extra: Any) -> int:
    """Queue a message; ``extra`` sets columns (a file's ``body`` is its name)."""
    async with ctx.transaction() as session:
        await records.enqueue(
            session,
            ctx.now(),
            destination=destination,
            is_direct=is_direct,
            message=_("Hello"),
            language="en",
            dedupe_key=key,
            pin_key=extra.pop("pin_key", None),
            attachment=extra.pop("attachment", None),
            attachment_type=extra.pop("attachment_type", None),
        )
        message = await session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
        assert message is not None
        for name, value in extra.items():
            setattr(message, name, value)
        return message.id


async def pinned_events(client, room_id: str) -> list[str]:
    response = await client.room_get_state_event(room_id, "m.room.pinned_events")
    assert isinstance(response, RoomGetStateEventResponse), response
    return list(response.content.get("pinned", []))


async def room_with(client, member: Member, *, encrypted: bool) -> str:
    """A room the bot made (so it has power 100 there) that the member has joined."""
    created = await client.room_create(
        name="Meeting room",
        invite=[member.user_id],
        initial_state=(
            [{"type": "m.room.encryption", "state_key": "", "content": ENCRYPTION}]
            if encrypted
            else []
        ),
    )
    await member.wait_for_invite(created.room_id)
    await member.join(created.room_id)
    return str(created.room_id)


async def test_a_calendar_file_in_an_encrypted_direct_room_is_decrypted_by_its_member(
    ctx, tmp_path, register_user, member_client
):
    bot_user = await register_user("bot", admin=True)
    alice = await member_client(await register_user("alice"))
    client = await bot(tmp_path, bot_user)
    try:
        sender = OutboxSender(client, ctx)
        outbox_id = await queue(
            ctx,
            alice.user_id,
            "ics:1",
            is_direct=True,
            body="M-12.ics",
            attachment=ICS,
            attachment_type="text/calendar",
        )
        assert await sender.drain_once() == 1
        room_id = await delivery.direct_room(ctx, alice.user_id)
        assert room_id is not None
        await alice.wait_for_invite(room_id)
        await alice.join(room_id)
        event = await alice.wait_for(lambda e: isinstance(e, RoomEncryptedFile), room_id=room_id)
        assert isinstance(event, RoomEncryptedFile)
        assert event.decrypted  # the message was encrypted, and so was the file
        content = event.source["content"]
        assert content["msgtype"] == "m.file" and content["body"] == "M-12.ics"
        assert content["info"] == {"mimetype": "text/calendar", "size": len(ICS)}
        assert (await row(ctx, outbox_id)).event_id == event.event_id

        downloaded = await alice.client.download(mxc=event.url)
        ciphertext = downloaded.body
        assert isinstance(ciphertext, bytes) and ciphertext != ICS
        plain = decrypt_attachment(ciphertext, event.key["k"], event.hashes["sha256"], event.iv)
        assert plain == ICS
    finally:
        await client.close()


async def test_a_pinned_message_edited_twice_is_one_pinned_event_showing_the_third_text(
    ctx, tmp_path, register_user, member_client
):
    bot_user = await register_user("bot", admin=True)
    alice = await member_client(await register_user("alice"))
    client = await bot(tmp_path, bot_user)
    try:
        room_id = await room_with(client, alice, encrypted=True)
        rules = await alice.send_text(room_id, "Our rules for debate")
        pinned = await client.room_put_state(room_id, "m.room.pinned_events", {"pinned": [rules]})
        assert isinstance(pinned, RoomPutStateResponse)

        sender = OutboxSender(client, ctx)
        texts = ["Phase: planning.", "Phase: debate. 3 options.", "Phase: vote. Ballot open."]
        ids = []
        for number, text in enumerate(texts, start=1):
            ids.append(
                await queue(ctx, room_id, f"pin:{number}", is_direct=False, pin_key="state:M-9")
            )
            async with ctx.transaction() as session:
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.id == ids[-1]).values(body=text)
                )
            assert await sender.drain_once() == 1

        original = (await row(ctx, ids[0])).event_id
        assert await pinned_events(client, room_id) == [rules, original]  # the rules kept
        assert await delivery.pinned_message(ctx, "state:M-9") == delivery.PinnedMessage(
            room_id, original
        )

        # The member reads the first version and its latest edit, both decrypted.
        first = await alice.wait_for_text(room_id, texts[0])
        assert first.event_id == original

        def edit_of_original(event) -> bool:
            relates = event.source.get("content", {}).get("m.relates_to", {})
            return relates.get("rel_type") == "m.replace" and relates.get("event_id") == original

        latest = await alice.wait_for(
            lambda e: (
                edit_of_original(e)
                and e.source["content"].get("m.new_content", {}).get("body") == texts[2]
            ),
            room_id=room_id,
        )
        assert latest.source["content"]["body"] == f"* {texts[2]}"
        assert (await row(ctx, ids[2])).event_id == latest.event_id

        # The homeserver counts two edits of the one pinned message: none sent twice.
        status, relations = await raw_request(
            client,
            "GET",
            ["rooms", room_id, "relations", original, "m.replace"],
            base="/_matrix/client/v1",
        )
        assert status == 200
        assert len(relations["chunk"]) == 2
    finally:
        await client.close()


async def test_a_things_announcement_waits_for_its_room_and_is_then_delivered(
    demo, tmp_path, register_user, member_client
):
    ctx = demo
    bot_user = await register_user("bot", admin=True)
    alice = await member_client(await register_user("alice"))
    called = await meetings.call_thing(ctx, ANA, [OWG, MEDIA], "Should we merge our groups?")
    meeting_id = int(called.ref.split("-")[1])
    async with ctx.transaction() as session:  # the use case's own messages: not this test's
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.sent_at.is_(None)).values(sent_at=ctx.now())
        )
        meeting = await session.get(Meeting, meeting_id)
        assert meeting is not None and meeting.matrix_room_id is None
        await announce(
            session,
            ctx,
            meeting,
            _("Welcome to the Thing's room."),
            f"welcome:{meeting_id}",
            pin_key=f"state:{called.ref}",
        )
        outbox_id = await session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.dedupe_key == f"welcome:{meeting_id}")
        )
    client = await bot(tmp_path, bot_user)
    try:
        sender = OutboxSender(client, ctx)
        assert await sender.drain_once() == 0  # no room yet: it waits
        assert (await row(ctx, outbox_id)).last_error == delivery.WAITING_FOR_ROOM

        room_id = await room_with(client, alice, encrypted=False)
        async with ctx.transaction() as session:  # what the room keeper records
            await session.execute(
                update(Meeting).where(Meeting.id == meeting_id).values(matrix_room_id=room_id)
            )
        ctx.clock.advance(seconds=31)
        assert await sender.drain_once() == 1
        event = await alice.wait_for_text(room_id, "Welcome to the Thing's room.")
        sent = await row(ctx, outbox_id)
        assert sent.event_id == event.event_id and sent.attempts == 1
        assert await pinned_events(client, room_id) == [event.event_id]
        assert await sender.drain_once() == 0  # delivered once
    finally:
        await client.close()
