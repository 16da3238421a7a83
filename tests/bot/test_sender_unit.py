"""The outbox sender against a fake homeserver: the Matrix content of each kind of
message, ballot links that never reach a log, failures retried, 429s honoured, members
who block invitations, and the 24-hour lookup."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from nio import (
    ErrorResponse,
    RoomCreateResponse,
    RoomGetStateResponse,
    RoomMessagesResponse,
    RoomSendError,
    RoomSendResponse,
)
from sqlalchemy import select

from harmony_matrix.bot.sender import MARKER, OutboxSender
from harmony_matrix.i18n import _
from harmony_matrix.services import ballots, records
from harmony_matrix.storage.models import Assembly, DirectRoom, OutboxMessage
from tests.ballots.helpers import meeting_at_vote, voters
from tests.services.helpers import ANA, GWEN, OWG

BOT = "@harmony:harmony.uk"


class FakeResponse:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body

    async def json(self, content_type: Any = None) -> dict[str, Any]:
        return self.body

    def release(self) -> None:
        pass


@dataclass
class FakeHomeserver:
    """Just enough of nio's AsyncClient, recording what the bot sent."""

    user_id: str = BOT
    access_token: str = "token"
    olm: Any = None
    should_query_keys: bool = False
    rooms: dict[str, Any] = field(default_factory=dict)
    encrypted_rooms: set[str] = field(default_factory=set)
    sent: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    events_by_txn: dict[str, str] = field(default_factory=dict)
    members: dict[str, dict[str, str]] = field(default_factory=dict)
    fail_sends: list[ErrorResponse] = field(default_factory=list)
    invite_error: dict[str, Any] | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    async def room_create(self, **kwargs: Any) -> RoomCreateResponse:
        room_id = f"!dm{len(self.members) + 1}"
        self.members[room_id] = {BOT: "join"}
        self.created = kwargs
        return RoomCreateResponse(room_id)

    async def send(self, method: str, path: str, data: Any = None, headers: Any = None):
        self.requests.append((method, path))
        if "m.room.member" in path and method == "GET":
            room_id = path.split("/rooms/")[1].split("/")[0].replace("%21", "!")
            user = path.rsplit("/", 1)[1].replace("%40", "@").replace("%3A", ":")
            membership = self.members.get(room_id, {}).get(user)
            if membership is None:
                return FakeResponse(404, {"errcode": "M_NOT_FOUND"})
            return FakeResponse(200, {"membership": membership})
        if "m.room.member" in path and method == "PUT":
            if self.invite_error:
                return FakeResponse(403, self.invite_error)
            room_id = path.split("/rooms/")[1].split("/")[0].replace("%21", "!")
            user = path.rsplit("/", 1)[1].replace("%40", "@").replace("%3A", ":")
            self.members[room_id][user] = "invite"
            return FakeResponse(200, {"event_id": "$invite"})
        if "override_ratelimit" in path:
            return FakeResponse(403, {"errcode": "M_FORBIDDEN"})
        return FakeResponse(200, {})

    async def room_leave(self, room_id: str) -> None:
        self.requests.append(("leave", room_id))

    async def room_forget(self, room_id: str) -> None:
        self.requests.append(("forget", room_id))

    async def room_get_state(self, room_id: str) -> RoomGetStateResponse:
        events = [
            {"type": "m.room.member", "state_key": user, "content": {"membership": m}}
            for user, m in self.members.get(room_id, {}).items()
        ]
        events.append({"type": "m.room.encryption", "state_key": "", "content": {}})
        return RoomGetStateResponse(events, room_id)

    async def room_send(self, room_id, message_type, content, tx_id=None, **kwargs):
        if self.fail_sends:
            return self.fail_sends.pop(0)
        if tx_id in self.events_by_txn:  # the homeserver's deduplication
            return RoomSendResponse(self.events_by_txn[tx_id], room_id)
        event_id = f"$e{len(self.sent) + 1}"
        self.events_by_txn[tx_id] = event_id
        self.sent.append((room_id, content, tx_id))
        self.history.append(
            {"event_id": event_id, "sender": BOT, "content": content, "room_id": room_id}
        )
        return RoomSendResponse(event_id, room_id)

    async def room_messages(self, room_id, **kwargs):
        @dataclass
        class Seen:
            source: dict[str, Any]
            event_id: str

        chunk = [Seen(e, e["event_id"]) for e in reversed(self.history) if e["room_id"] == room_id]
        return RoomMessagesResponse(room_id, chunk, "start", "")


async def queue(ctx, destination, key, *, is_direct=True, **extra):
    async with ctx.transaction() as session:
        await records.enqueue(
            session,
            ctx.now(),
            destination=destination,
            is_direct=is_direct,
            message=_("Hello"),
            language="en",
            dedupe_key=key,
        )
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))
        for name, value in extra.items():
            setattr(row, name, value)
        return row.id


async def row(ctx, outbox_id):
    async with ctx.transaction() as session:
        found = await session.get(OutboxMessage, outbox_id)
        session.expunge(found)
        return found


@pytest.fixture
def homeserver():
    return FakeHomeserver()


@pytest.fixture
def sender(demo, homeserver):
    return OutboxSender(homeserver, demo)  # type: ignore[arg-type]


async def test_a_direct_message_is_text_that_pings_its_member_in_one_reused_room(
    demo, homeserver, sender
):
    await queue(demo, GWEN, "d1")
    await queue(demo, GWEN, "d2")
    assert await sender.drain_once() == 2
    (room1, first, txn1), (room2, _second, _txn2) = homeserver.sent
    assert room1 == room2 == "!dm1" and len(homeserver.members) == 1
    assert homeserver.created["is_direct"] is True
    assert homeserver.created["preset"].value == "private_chat"
    assert homeserver.created["initial_state"][0]["type"] == "m.room.encryption"
    assert first["msgtype"] == "m.text" and first["m.mentions"] == {"user_ids": [GWEN]}
    assert GWEN in first["body"] and "Hello" in first["body"]
    assert first[MARKER] == txn1
    async with demo.transaction() as session:
        assert (await session.get(DirectRoom, GWEN)).room_id == "!dm1"
    assert any("account_data/m.direct" in path for _m, path in homeserver.requests)


async def test_a_reply_is_a_notice_in_reply_with_html_and_one_mention(demo, homeserver, sender):
    outbox_id = await queue(
        demo,
        "!room",
        "r1",
        is_direct=False,
        notice=True,
        reply_to_event_id="$command",
        mention=ANA,
        html="<b>Hello</b>",
    )
    assert await sender.drain_once() == 1
    ((room, content, _txn),) = homeserver.sent
    assert room == "!room"
    assert content["msgtype"] == "m.notice"
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$command"}}
    assert content["m.mentions"] == {"user_ids": [ANA]}
    assert (content["format"], content["formatted_body"]) == (
        "org.matrix.custom.html",
        "<b>Hello</b>",
    )
    assert (await row(demo, outbox_id)).event_id == "$e1"


async def test_a_resend_after_a_crash_reuses_the_transaction_id(demo, homeserver, sender):
    outbox_id = await queue(demo, "!room", "c1", is_direct=False)
    await sender.drain_once()
    async with demo.transaction() as session:  # "crashed before it was marked sent"
        (await session.get(OutboxMessage, outbox_id)).sent_at = None
    await sender.drain_once()
    assert len(homeserver.sent) == 1  # the homeserver returned the first event
    assert (await row(demo, outbox_id)).event_id == "$e1"


async def test_after_a_day_the_bot_looks_in_the_room_before_sending_again(demo, homeserver, sender):
    outbox_id = await queue(demo, "!room", "old", is_direct=False)
    await sender.drain_once()
    async with demo.transaction() as session:
        (await session.get(OutboxMessage, outbox_id)).sent_at = None
    homeserver.events_by_txn.clear()  # the homeserver forgot the transaction
    demo.clock.advance(hours=24)
    await sender.drain_once()
    assert len(homeserver.sent) == 1  # found in the room: not sent again
    assert (await row(demo, outbox_id)).event_id == "$e1"

    # A message the room does not hold is sent.
    other = await queue(demo, "!room", "old2", is_direct=False, first_attempt_at=demo.now())
    demo.clock.advance(hours=24)
    await sender.drain_once()
    assert len(homeserver.sent) == 2 and (await row(demo, other)).sent_at is not None


async def test_a_failure_is_recorded_and_retried_and_a_429_is_honoured(demo, homeserver, sender):
    outbox_id = await queue(demo, "!room", "f1", is_direct=False)
    homeserver.fail_sends = [
        RoomSendError("slow down", "M_LIMIT_EXCEEDED", retry_after_ms=30),
        RoomSendError("oops", "M_UNKNOWN"),
    ]
    assert await sender.drain_once() == 0
    limited = await row(demo, outbox_id)
    assert limited.attempts == 0 and "M_LIMIT_EXCEEDED" in limited.last_error
    assert limited.next_attempt_at == demo.now() + timedelta(milliseconds=30)
    demo.clock.advance(seconds=1)
    assert await sender.drain_once() == 0
    failed = await row(demo, outbox_id)
    assert failed.attempts == 1 and "M_UNKNOWN oops" in failed.last_error
    assert failed.next_attempt_at > demo.now()
    demo.clock.advance(minutes=1)
    assert await sender.drain_once() == 1
    assert (await row(demo, outbox_id)).attempts == 2


async def test_a_member_who_blocks_invites_is_told_in_their_assembly_room(demo, homeserver, sender):
    async with demo.transaction() as session:
        owg = await session.scalar(select(Assembly).where(Assembly.slug == OWG))
        owg.matrix_room_id = "!owg"
    homeserver.invite_error = {"errcode": "M_INVITE_BLOCKED", "error": "not permitted"}
    waiting = await queue(demo, GWEN, "blocked")
    assert await sender.drain_once() == 1  # the notice in the OWG's room
    ((room, content, _txn),) = homeserver.sent
    assert room == "!owg" and content["m.mentions"] == {"user_ids": [GWEN]}
    assert content["msgtype"] == "m.text" and BOT in content["body"]
    assert (await row(demo, waiting)).sent_at is None
    assert ("leave", "!dm1") in homeserver.requests  # the room it made is not left behind
    assert await sender.drain_once() == 0  # her message waits, and she is not told twice


async def test_ballot_links_reach_the_member_and_never_a_log(demo, homeserver, sender, caplog):
    caplog.set_level(logging.DEBUG)
    present = await voters(demo, 9)
    ref = await meeting_at_vote(demo, present)
    await sender.drain_once()  # the meeting's notices: the next message is a ballot's
    await ballots.open_ballot(demo, ANA, ref)
    homeserver.fail_sends = [RoomSendError("oops", "M_UNKNOWN")]  # the first attempt fails
    await sender.drain_once()
    demo.clock.advance(minutes=5)
    await sender.drain_once()
    links = {}
    for _room, content, txn in homeserver.sent:
        if "/vote/" not in content["body"]:
            assert MARKER in content  # the meeting's other messages
            continue
        assert content["msgtype"] == "m.text" and MARKER not in content
        assert txn.startswith("harmony-ballot-")
        link = next(w for w in content["body"].split() if "/vote/" in w)
        links[content["m.mentions"]["user_ids"][0]] = link.rsplit("/vote/", 1)[1]
    assert set(links) == set(present)
    for path in links.values():
        assert await ballots.cast_ballot(demo, path, {1: 5, 2: 0, 3: 1})
        token = path.split(".")[1]
        assert token not in caplog.text and path not in caplog.text
    assert "/vote/" not in caplog.text and "oops" in caplog.text
    async with demo.transaction() as session:
        ballot_rows = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.voting_right_id.is_not(None))
            )
        )
    assert all(r.sent_at is not None and r.event_id for r in ballot_rows)
    assert all("/vote/" not in (r.body + r.last_error) for r in ballot_rows)


async def test_wake_sends_at_once_and_stop_ends_the_run(demo, homeserver, caplog):
    sender = OutboxSender(homeserver, demo, poll_seconds=60)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    await asyncio.sleep(0.05)  # idle now, its next poll a minute away
    assert "would not lift the rate limits" in caplog.text  # said once, then paced
    await queue(demo, "!room", "wake", is_direct=False)
    woken = time.perf_counter()
    sender.wake()
    while not homeserver.sent:
        assert time.perf_counter() - woken < 1.0, "wake() did not send at once"
        await asyncio.sleep(0.001)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert caplog.text.count("would not lift the rate limits") == 1
