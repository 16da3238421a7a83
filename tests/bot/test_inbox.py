"""The inbox with a fake nio client: which events are commands, in what order, what
happens to a message the bot cannot decrypt yet, and how a gap in a timeline is filled."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from nio import EncryptionError, Event, MegolmEvent, RoomMessagesResponse
from nio.api import MessageDirection

from harmony_matrix.bot.inbox import Inbox

BOT = "@harmony:party.test"
ANN = "@ann:party.test"
BEN = "@ben:elsewhere.test"
ROOM = "!assembly-room"
OTHER_ROOM = "!other-room"
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
GRACE = timedelta(seconds=60)

_ids = itertools.count(1)


def at(seconds_ago: float) -> int:
    return int((NOW - timedelta(seconds=seconds_ago)).timestamp() * 1000)


def message(sender: str, body: str, *, seconds_ago: float = 1, msgtype: str = "m.text") -> Event:
    event = Event.parse_event(
        {
            "type": "m.room.message",
            "event_id": f"$message{next(_ids)}",
            "sender": sender,
            "origin_server_ts": at(seconds_ago),
            "content": {"msgtype": msgtype, "body": body},
        }
    )
    assert not isinstance(event, MegolmEvent)
    return event


def encrypted(sender: str, session_id: str, *, seconds_ago: float = 1) -> MegolmEvent:
    event = Event.parse_encrypted_event(
        {
            "type": "m.room.encrypted",
            "event_id": f"$encrypted{next(_ids)}",
            "sender": sender,
            "origin_server_ts": at(seconds_ago),
            "content": {
                "algorithm": "m.megolm.v1.aes-sha2",
                "ciphertext": "opaque",
                "sender_key": "curve-key",
                "session_id": session_id,
                "device_id": "DEVICE",
            },
        }
    )
    assert isinstance(event, MegolmEvent)
    return event


def joined(user: str, *, seconds_ago: float) -> Event:
    return Event.parse_event(
        {
            "type": "m.room.member",
            "event_id": f"$member{next(_ids)}",
            "sender": user,
            "state_key": user,
            "origin_server_ts": at(seconds_ago),
            "content": {"membership": "join"},
        }
    )


@dataclass
class FakeClient:
    """What the inbox uses of nio's AsyncClient."""

    user_id: str = BOT
    #: Room key session ID -> the plaintext body of events encrypted with it, once known.
    keys: dict[str, str] = field(default_factory=dict)
    #: (room, token) -> (events newest first, next token) for /messages backwards.
    pages: dict[tuple[str, str], tuple[list[Event], str | None]] = field(default_factory=dict)
    page_requests: list[tuple[str, str]] = field(default_factory=list)
    key_requests: list[str] = field(default_factory=list)

    def decrypt_event(self, event: MegolmEvent) -> Event:
        if event.session_id not in self.keys:
            raise EncryptionError("no session")
        decrypted = Event.parse_event(
            {
                "type": "m.room.message",
                "event_id": event.event_id,
                "sender": event.sender,
                "origin_server_ts": event.server_timestamp,
                "content": {"msgtype": "m.text", "body": self.keys[event.session_id]},
            }
        )
        return decrypted

    async def room_messages(
        self, room_id: str, *, start: str, direction: MessageDirection, limit: int
    ) -> RoomMessagesResponse:
        assert direction is MessageDirection.back
        self.page_requests.append((room_id, start))
        chunk, end = self.pages.get((room_id, start), ([], None))
        return RoomMessagesResponse(room_id, chunk, start, end)  # type: ignore[arg-type]

    async def request_room_key(self, event: MegolmEvent) -> None:
        self.key_requests.append(event.event_id)


class MovableClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def inbox(client: FakeClient, clock: MovableClock | None = None) -> Inbox:
    return Inbox(
        client,  # type: ignore[arg-type]
        prefix="!",
        grace=GRACE,
        history_window=timedelta(hours=2),
        clock=clock or MovableClock(),
    )


def sync(
    rooms: dict[str, list[Any]], *, limited: dict[str, str] | None = None
) -> Any:  # a SyncResponse as far as the inbox reads it
    limited = limited or {}
    return SimpleNamespace(
        rooms=SimpleNamespace(
            join={
                room_id: SimpleNamespace(
                    timeline=SimpleNamespace(
                        events=events,
                        limited=room_id in limited,
                        prev_batch=limited.get(room_id),
                    )
                )
                for room_id, events in rooms.items()
            }
        )
    )


async def test_commands_are_found_in_order_and_nothing_else():
    client = FakeClient()
    found = await inbox(client).commands_in(
        sync(
            {
                ROOM: [
                    message(ANN, "!whoami"),
                    message(ANN, "hello everyone"),  # not a command
                    message(BOT, "!help is how you ask me"),  # the bot's own message
                    message(BEN, "   !quorum  "),  # spaces around it
                    message(ANN, "say !help"),  # the prefix is not at the start
                    joined(BEN, seconds_ago=1),
                ],
                OTHER_ROOM: [message(BEN, "!assembly")],
            }
        )
    )
    assert [(item.room_id, item.sender, item.body) for item in found] == [
        (ROOM, ANN, "!whoami"),
        (ROOM, BEN, "!quorum"),
        (OTHER_ROOM, BEN, "!assembly"),
    ]
    assert found[0].sent_at == NOW - timedelta(seconds=1)
    assert client.page_requests == []  # no gap, no history read


async def test_an_unreadable_message_is_kept_until_its_key_arrives():
    client = FakeClient()
    box = inbox(client)
    locked = encrypted(ANN, "session-a")
    own = encrypted(BOT, "session-b")  # the bot's own message: never waited for

    assert await box.commands_in(sync({ROOM: [locked, own]})) == []
    assert box.retry_unreadable() == []  # no key yet
    await box.request_missing_keys()
    await box.request_missing_keys()
    assert client.key_requests == [locked.event_id]  # asked once

    client.keys["session-a"] = "!whoami"
    [found] = box.retry_unreadable()
    assert (found.event_id, found.room_id, found.sender, found.body) == (
        locked.event_id,
        ROOM,
        ANN,
        "!whoami",
    )
    assert box.retry_unreadable() == []  # returned once
    assert box.given_up() == []


async def test_a_decrypted_non_command_is_dropped_quietly():
    client = FakeClient(keys={"session-a": "just chatting"})
    box = inbox(client)
    await box.commands_in(sync({ROOM: [encrypted(ANN, "session-a")]}))
    assert box.retry_unreadable() == []
    assert box.given_up() == []


async def test_the_bot_gives_up_after_the_grace_period_only():
    client = FakeClient()
    clock = MovableClock()
    box = inbox(client, clock)
    locked = encrypted(ANN, "session-a")
    await box.commands_in(sync({ROOM: [locked]}))

    clock.now += GRACE - timedelta(seconds=1)
    assert box.given_up() == []
    assert box.retry_unreadable() == []
    clock.now += timedelta(seconds=1)
    assert [event.event_id for event in box.given_up()] == [locked.event_id]
    assert box.given_up() == []  # once
    client.keys["session-a"] = "!whoami"
    assert box.retry_unreadable() == []  # given up: no longer waited for

    # The same event seen again (a replayed sync) is not kept twice.
    again = encrypted(BEN, "session-c")
    await box.commands_in(sync({ROOM: [again]}))
    clock.now += timedelta(seconds=30)
    await box.commands_in(sync({ROOM: [again]}))
    clock.now += timedelta(seconds=30)
    assert [event.event_id for event in box.given_up()] == [again.event_id]


async def test_a_gap_is_filled_back_to_the_bots_own_join_oldest_first():
    client = FakeClient()
    before_join = message(ANN, "!whoami", seconds_ago=600)  # history: not the bot's
    oldest = message(ANN, "!help", seconds_ago=300)
    middle = message(BEN, "!quorum", seconds_ago=200)
    newest = message(ANN, "!assembly", seconds_ago=100)
    client.pages = {
        (ROOM, "gap-1"): ([newest, message(BEN, "chat", seconds_ago=150), middle], "gap-2"),
        (ROOM, "gap-2"): (
            [oldest, joined(BOT, seconds_ago=400), before_join],
            "gap-3",
        ),
        (ROOM, "gap-3"): ([message(ANN, "!never read", seconds_ago=700)], None),
    }
    in_timeline = message(BEN, "!whoami", seconds_ago=1)

    found = await inbox(client).commands_in(sync({ROOM: [in_timeline]}, limited={ROOM: "gap-1"}))

    assert [item.event_id for item in found] == [
        oldest.event_id,
        middle.event_id,
        newest.event_id,
        in_timeline.event_id,
    ]
    assert client.page_requests == [(ROOM, "gap-1"), (ROOM, "gap-2")]  # stopped at the join


async def test_a_gap_stops_at_the_history_window():
    client = FakeClient()
    recent = message(ANN, "!help", seconds_ago=60)
    client.pages = {
        (ROOM, "gap-1"): ([recent, message(ANN, "!whoami", seconds_ago=3 * 3600)], "gap-2"),
    }
    found = await inbox(client).commands_in(sync({ROOM: []}, limited={ROOM: "gap-1"}))
    assert [item.event_id for item in found] == [recent.event_id]
    assert client.page_requests == [(ROOM, "gap-1")]
