"""The outbox sender's three other kinds of message, against a fake homeserver: messages
to a meeting's room (waiting for it, in order), files (uploaded encrypted for an
encrypted room, exactly once across a crash), and pinned messages kept up to date by
edits (the first version pinned, overtaken versions skipped, crashes in between)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from nio import (
    RoomGetStateEventError,
    RoomGetStateEventResponse,
    RoomGetStateResponse,
    RoomPutStateError,
    RoomPutStateResponse,
    RoomSendError,
    UploadResponse,
)
from nio.crypto import decrypt_attachment, encrypt_attachment
from sqlalchemy import delete, update

from harmony_matrix.bot.sender import MARKER, OutboxSender
from harmony_matrix.services import delivery, meetings
from harmony_matrix.services.announcements import meeting_destination
from harmony_matrix.storage.models import Assembly, MatrixState, Meeting, OutboxMessage
from tests.bot.test_sender_unit import FakeHomeserver, queue, row
from tests.services.helpers import ANA, GWEN, MEDIA, OWG

ICS = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nSUMMARY:Moot M-12\r\nEND:VCALENDAR\r\n"
PIN = "state:M-1"


@dataclass
class KindsHomeserver(FakeHomeserver):
    """The fake homeserver, with a media repository and room state."""

    #: Rooms that are not encrypted (all others are).
    plain_rooms: set[str] = field(default_factory=set)
    #: mxc URI -> the bytes uploaded (ciphertext for an encrypted upload).
    media: dict[str, bytes] = field(default_factory=dict)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    #: (room, event type) -> state content.
    state: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    state_error: RoomPutStateError | None = None
    read_state_error: RoomGetStateEventError | None = None
    fail_uploads: int = 0

    async def room_get_state(self, room_id: str) -> RoomGetStateResponse:
        response = await super().room_get_state(room_id)
        if room_id in self.plain_rooms:
            response.events = [e for e in response.events if e["type"] != "m.room.encryption"]
        return response

    async def upload(self, data_provider, content_type="", filename=None, encrypt=False, **kw):
        data = data_provider.read()
        if self.fail_uploads:
            self.fail_uploads -= 1
            raise ConnectionError("the media repository is away")
        keys = None
        if encrypt:
            data, keys = encrypt_attachment(data)
        uri = f"mxc://fake/{len(self.media) + 1}"
        self.media[uri] = data
        self.uploads.append(
            {"type": content_type, "filename": filename, "encrypt": encrypt, "size": kw}
        )
        return UploadResponse(uri), keys

    async def room_get_state_event(self, room_id, event_type, state_key=""):
        if self.read_state_error is not None:
            return self.read_state_error
        content = self.state.get((room_id, event_type))
        if content is None:
            return RoomGetStateEventError("not found", "M_NOT_FOUND")
        return RoomGetStateEventResponse(dict(content), event_type, state_key, room_id)

    async def room_put_state(self, room_id, event_type, content, state_key=""):
        if self.state_error is not None:
            return self.state_error
        self.state[(room_id, event_type)] = content
        return RoomPutStateResponse(f"$state{len(self.state)}", room_id)

    def pinned(self, room_id: str) -> list[str]:
        return self.state.get((room_id, "m.room.pinned_events"), {}).get("pinned", [])

    def sent_to(self, room_id: str) -> list[dict[str, Any]]:
        return [content for room, content, _txn in self.sent if room == room_id]


@pytest.fixture
def homeserver():
    return KindsHomeserver()


@pytest.fixture
def sender(demo, homeserver):
    return OutboxSender(homeserver, demo)  # type: ignore[arg-type]


async def settle_everything(ctx) -> None:
    """Mark what the use cases queued as sent: the tests watch their own messages."""
    async with ctx.transaction() as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.sent_at.is_(None)).values(sent_at=ctx.now())
        )


async def a_thing(ctx) -> int:
    """A Thing of Assemblies (which has no room until the bot makes one)."""
    called = await meetings.call_thing(ctx, ANA, [OWG, MEDIA], "Should we merge?")
    await settle_everything(ctx)
    return int(called.ref.split("-")[1])


async def give_room(ctx, meeting_id: int, room_id: str) -> None:
    async with ctx.transaction() as session:
        await session.execute(
            update(Meeting).where(Meeting.id == meeting_id).values(matrix_room_id=room_id)
        )


async def queue_version(ctx, key: str, text: str, *, room: str = "!room", **extra) -> int:
    return await queue(ctx, room, key, is_direct=False, pin_key=PIN, body=text, **extra)


async def crash_before_marked_sent(ctx, outbox_id: int) -> None:
    """As if the bot died after the homeserver accepted the message, before it recorded
    that (and, for a first version, the pinned message: the same transaction)."""
    async with ctx.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == outbox_id)
            .values(sent_at=None, event_id=None, attempts=0)
        )
        await session.execute(
            delete(MatrixState).where(MatrixState.name == delivery.pin_state_name(PIN))
        )


# Meeting destinations


async def test_a_things_messages_wait_for_its_room_then_go_there_in_order(demo, homeserver, sender):
    meeting_id = await a_thing(demo)
    first = await queue(demo, meeting_destination(meeting_id), "t1", is_direct=False, body="One")
    second = await queue(demo, meeting_destination(meeting_id), "t2", is_direct=False, body="Two")
    assert await sender.drain_once() == 0
    for waiting in (await row(demo, first), await row(demo, second)):
        assert waiting.attempts == 0 and waiting.sent_at is None and waiting.failed_at is None
        assert waiting.last_error == delivery.WAITING_FOR_ROOM
        assert waiting.next_attempt_at == demo.now() + delivery.ROOM_WAIT_POLL
    assert homeserver.sent == []

    # The room is made; a third message, queued now, is due before the two that wait.
    await give_room(demo, meeting_id, "!thing")
    demo.clock.advance(seconds=5)
    third = await queue(demo, meeting_destination(meeting_id), "t3", is_direct=False, body="Three")
    await sender.drain_once()
    await sender.drain_once()
    assert [c["body"] for c in homeserver.sent_to("!thing")] == ["One", "Two", "Three"]
    for outbox_id in (first, second, third):
        sent = await row(demo, outbox_id)
        assert sent.sent_at is not None and sent.attempts == 1
    # A room message: not a direct message's text naming a recipient.
    content = homeserver.sent_to("!thing")[0]
    assert content["m.mentions"] == {} and content[MARKER]
    assert len(homeserver.members) == 0  # no direct room was made


async def test_a_moots_messages_go_to_its_assemblys_room(demo, homeserver, sender):
    called = await meetings.call_moot(demo, ANA, OWG, "Should we meet on Tuesdays?")
    await settle_everything(demo)
    meeting_id = int(called.ref.split("-")[1])
    await queue(demo, meeting_destination(meeting_id), "moot", is_direct=False)
    assert await sender.drain_once() == 0  # the OWG has no room yet
    async with demo.transaction() as session:
        await session.execute(
            update(Assembly).where(Assembly.slug == OWG).values(matrix_room_id="!owg")
        )
    demo.clock.advance(seconds=31)
    assert await sender.drain_once() == 1
    assert len(homeserver.sent_to("!owg")) == 1


async def test_a_meeting_that_never_gets_a_room_is_given_up_after_a_week(demo, homeserver, sender):
    meeting_id = await a_thing(demo)
    waiting = await queue(demo, meeting_destination(meeting_id), "never", is_direct=False)
    await sender.drain_once()
    demo.clock.advance(days=6, hours=23)
    await sender.drain_once()
    assert (await row(demo, waiting)).failed_at is None
    demo.clock.advance(hours=1)
    await sender.drain_once()
    failed = await row(demo, waiting)
    assert failed.failed_at is not None and failed.attempts == 0
    assert delivery.WAITING_FOR_ROOM in failed.last_error
    assert homeserver.sent == []


# Attachments


async def test_a_file_to_an_encrypted_direct_room_is_uploaded_encrypted(demo, homeserver, sender):
    outbox_id = await queue(
        demo, GWEN, "ics", body="M-12.ics", attachment=ICS, attachment_type="text/calendar"
    )
    assert await sender.drain_once() == 1
    ((room, content, txn),) = homeserver.sent
    assert room == "!dm1"
    assert content["msgtype"] == "m.file" and content["body"] == "M-12.ics"
    assert content["info"] == {"mimetype": "text/calendar", "size": len(ICS)}
    assert "url" not in content  # only inside "file", with the keys
    encrypted = content["file"]
    assert encrypted["v"] == "v2" and encrypted["url"] in homeserver.media
    ciphertext = homeserver.media[encrypted["url"]]
    assert ciphertext != ICS
    plain = decrypt_attachment(
        ciphertext, encrypted["key"]["k"], encrypted["hashes"]["sha256"], encrypted["iv"]
    )
    assert plain == ICS
    assert homeserver.uploads[0]["encrypt"] is True
    assert homeserver.uploads[0]["filename"] == "M-12.ics"
    assert content[MARKER] == txn
    assert (await row(demo, outbox_id)).event_id == "$e1"


async def test_a_file_to_a_room_that_is_not_encrypted_is_uploaded_as_it_is(
    demo, homeserver, sender
):
    homeserver.plain_rooms.add("!plain")
    await queue(
        demo,
        "!plain",
        "ics-plain",
        is_direct=False,
        body="M-3.ics",
        attachment=ICS,
        attachment_type="text/calendar",
    )
    assert await sender.drain_once() == 1
    ((_room, content, _txn),) = homeserver.sent
    assert "file" not in content and homeserver.media[content["url"]] == ICS
    assert homeserver.uploads[0]["encrypt"] is False
    assert homeserver.uploads[0]["type"] == "text/calendar"


async def test_a_file_resent_after_a_crash_is_one_message(demo, homeserver, sender):
    outbox_id = await queue(
        demo, GWEN, "ics-crash", body="M-12.ics", attachment=ICS, attachment_type="text/calendar"
    )
    homeserver.fail_uploads = 1
    assert await sender.drain_once() == 0  # the upload failed: retried like any failure
    assert (await row(demo, outbox_id)).attempts == 1
    demo.clock.advance(minutes=1)
    assert await sender.drain_once() == 1
    await crash_before_marked_sent(demo, outbox_id)
    assert await sender.drain_once() == 1
    assert len(homeserver.sent) == 1  # the same transaction ID: the first event
    assert len(homeserver.uploads) == 2  # the second upload is an orphan, unused
    assert (await row(demo, outbox_id)).event_id == "$e1"


# Pinned messages


async def test_the_first_version_is_pinned_and_later_ones_edit_it(demo, homeserver, sender):
    homeserver.state[("!room", "m.room.pinned_events")] = {"pinned": ["$rules"]}
    first = await queue_version(demo, "v1", "Phase: planning")
    assert await sender.drain_once() == 1
    (content,) = homeserver.sent_to("!room")
    assert content["body"] == "Phase: planning" and "m.relates_to" not in content
    assert homeserver.pinned("!room") == ["$rules", "$e1"]  # the earlier pin is kept
    assert await delivery.pinned_message(demo, PIN) == delivery.PinnedMessage("!room", "$e1")
    assert (await row(demo, first)).event_id == "$e1"

    await queue_version(demo, "v2", "Phase: debate", html="<b>Phase</b>: debate")
    await queue_version(demo, "v3", "Phase: vote")
    assert await sender.drain_once() == 2  # v2 skipped (v3 overtook it), v3 sent
    assert len(homeserver.sent_to("!room")) == 2
    edit = homeserver.sent_to("!room")[1]
    assert edit["body"] == "* Phase: vote"
    assert edit["m.new_content"]["body"] == "Phase: vote"
    assert MARKER not in edit["m.new_content"]
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$e1"}
    assert edit["m.mentions"] == {}
    assert homeserver.pinned("!room") == ["$rules", "$e1"]  # pinned once

    await queue_version(demo, "v4", "Phase: closed", html="<b>Phase</b>: closed")
    await sender.drain_once()
    latest = homeserver.sent_to("!room")[-1]
    assert latest["formatted_body"] == "* <b>Phase</b>: closed"
    assert latest["m.new_content"]["formatted_body"] == "<b>Phase</b>: closed"
    assert latest["m.new_content"]["format"] == "org.matrix.custom.html"
    assert latest["m.relates_to"]["event_id"] == "$e1"


async def test_versions_overtaken_before_they_went_out_are_never_sent(demo, homeserver, sender):
    ids = [await queue_version(demo, f"s{n}", f"Version {n}") for n in (1, 2, 3)]
    assert await sender.drain_once() == 3
    (content,) = homeserver.sent_to("!room")
    assert content["body"] == "Version 3" and "m.relates_to" not in content
    assert homeserver.pinned("!room") == ["$e1"]
    for skipped in ids[:2]:
        settled = await row(demo, skipped)
        assert settled.sent_at is not None and settled.event_id is None
        assert "superseded" in settled.last_error
    assert (await row(demo, ids[2])).event_id == "$e1"


async def test_a_first_version_resent_after_a_crash_is_pinned_once(demo, homeserver, sender):
    first = await queue_version(demo, "c1", "Phase: planning")
    await sender.drain_once()
    await crash_before_marked_sent(demo, first)
    assert await delivery.pinned_message(demo, PIN) is None
    assert await sender.drain_once() == 1
    assert len(homeserver.sent) == 1 and homeserver.pinned("!room") == ["$e1"]
    assert await delivery.pinned_message(demo, PIN) == delivery.PinnedMessage("!room", "$e1")


async def test_a_first_version_sent_before_a_crash_is_edited_by_the_version_that_overtook_it(
    demo, homeserver, sender
):
    first = await queue_version(demo, "o1", "Phase: planning")
    await sender.drain_once()
    await crash_before_marked_sent(demo, first)
    homeserver.state.clear()  # it died before pinning, even
    await queue_version(demo, "o2", "Phase: debate")
    await sender.drain_once()
    first_content, edit = homeserver.sent_to("!room")
    assert first_content["body"] == "Phase: planning"
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$e1"}
    assert homeserver.pinned("!room") == ["$e1"]  # one pinned message, not two
    assert (await row(demo, first)).event_id == "$e1"


async def test_a_first_version_that_never_went_out_is_skipped_for_the_newer_one(
    demo, homeserver, sender
):
    first = await queue_version(demo, "n1", "Phase: planning")
    homeserver.fail_sends = [RoomSendError("oops", "M_UNKNOWN")]
    assert await sender.drain_once() == 0
    assert (await row(demo, first)).first_attempt_at is not None
    await queue_version(demo, "n2", "Phase: debate")
    demo.clock.advance(minutes=5)
    await sender.drain_once()
    (content,) = homeserver.sent_to("!room")  # looked for, not found: the newer one first
    assert content["body"] == "Phase: debate" and homeserver.pinned("!room") == ["$e1"]
    assert "superseded" in (await row(demo, first)).last_error


async def test_without_the_power_to_pin_the_message_still_counts_as_sent(
    demo, homeserver, sender, caplog
):
    homeserver.state_error = RoomPutStateError("no power", "M_FORBIDDEN")
    first = await queue_version(demo, "p1", "Phase: planning")
    assert await sender.drain_once() == 1
    assert (await row(demo, first)).event_id == "$e1"
    assert "may not pin" in caplog.text
    assert await delivery.pinned_message(demo, PIN) == delivery.PinnedMessage("!room", "$e1")
    await queue_version(demo, "p2", "Phase: debate")
    await sender.drain_once()
    assert homeserver.sent_to("!room")[1]["m.relates_to"]["event_id"] == "$e1"


async def test_a_failure_to_pin_is_retried_without_a_second_message(demo, homeserver, sender):
    homeserver.read_state_error = RoomGetStateEventError("busy", "M_UNKNOWN")
    first = await queue_version(demo, "r1", "Phase: planning")
    assert await sender.drain_once() == 0
    assert (await row(demo, first)).attempts == 1
    homeserver.read_state_error = None
    demo.clock.advance(minutes=1)
    assert await sender.drain_once() == 1
    assert len(homeserver.sent) == 1 and homeserver.pinned("!room") == ["$e1"]


async def test_in_a_new_room_the_next_version_starts_a_new_pinned_message(demo, homeserver, sender):
    meeting_id = await a_thing(demo)
    destination = meeting_destination(meeting_id)
    await give_room(demo, meeting_id, "!old")
    await queue(demo, destination, "m1", is_direct=False, pin_key=PIN, body="One")
    await sender.drain_once()
    await give_room(demo, meeting_id, "!new")  # e.g. the room was upgraded
    await queue(demo, destination, "m2", is_direct=False, pin_key=PIN, body="Two")
    await sender.drain_once()
    (content,) = homeserver.sent_to("!new")
    assert "m.relates_to" not in content and homeserver.pinned("!new") == ["$e2"]
    assert await delivery.pinned_message(demo, PIN) == delivery.PinnedMessage("!new", "$e2")


async def test_after_a_day_a_first_version_found_in_the_room_is_pinned(demo, homeserver, sender):
    first = await queue_version(demo, "d1", "Phase: planning")
    await sender.drain_once()
    await crash_before_marked_sent(demo, first)
    homeserver.state.clear()
    homeserver.events_by_txn.clear()  # the homeserver forgot the transaction
    demo.clock.advance(hours=24)
    assert await sender.drain_once() == 1
    assert len(homeserver.sent) == 1 and homeserver.pinned("!room") == ["$e1"]
    assert await delivery.pinned_message(demo, PIN) == delivery.PinnedMessage("!room", "$e1")
