"""Commands out of the sync stream: in order, once, including those sent while the bot was
away, and those that could not be decrypted at first.

The inbox only finds commands; it does not act on them (``handling.py`` does, recording
each event it acted on, so a command found twice is still handled once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nio import (
    AsyncClient,
    MegolmEvent,
    RoomMemberEvent,
    RoomMessagesResponse,
    RoomMessageText,
    SyncResponse,
)
from nio.api import MessageDirection

log = logging.getLogger(__name__)

#: How many pages of history the bot reads back to fill a gap after a long absence.
MAX_GAP_PAGES = 20
GAP_PAGE_SIZE = 100


@dataclass(frozen=True)
class Incoming:
    """A message that starts with the command prefix."""

    event_id: str
    room_id: str
    sender: str
    body: str
    sent_at: datetime


@dataclass
class _Unreadable:
    event: MegolmEvent
    first_seen: datetime
    key_requested: bool = False


def _moment(server_timestamp: int) -> datetime:
    return datetime.fromtimestamp(server_timestamp / 1000, UTC)


class Inbox:
    def __init__(
        self,
        client: AsyncClient,
        *,
        prefix: str,
        grace: timedelta,
        history_window: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.grace = grace
        #: How far back a gap is filled: commands older than this are answered with "I was
        #: offline" by the handler, so reading further back would find nothing to do.
        self.history_window = history_window
        self.clock = clock
        self._unreadable: dict[str, _Unreadable] = {}

    def is_command(self, event: object) -> bool:
        return (
            isinstance(event, RoomMessageText)
            and event.sender != self.client.user_id
            and event.body.lstrip().startswith(self.prefix)
        )

    async def commands_in(self, response: SyncResponse) -> list[Incoming]:
        """The commands of a sync response (the first sync's history excluded by the
        caller), oldest first, with the gaps of ``limited`` timelines filled in."""
        found: list[Incoming] = []
        for room_id, room in response.rooms.join.items():
            events = list(room.timeline.events)
            if room.timeline.limited and room.timeline.prev_batch:
                events = await self._before(room_id, room.timeline.prev_batch) + events
            for event in events:
                found.extend(self._consider(room_id, event))
        return found

    def retry_unreadable(self) -> list[Incoming]:
        """Events that could not be decrypted, tried again (room keys may have arrived)."""
        found: list[Incoming] = []
        for event_id, waiting in list(self._unreadable.items()):
            try:
                decrypted = self.client.decrypt_event(waiting.event)
            except Exception:  # nio raises EncryptionError, or worse for a bad session
                continue
            del self._unreadable[event_id]
            decrypted.room_id = waiting.event.room_id
            found.extend(self._consider(waiting.event.room_id, decrypted))
        return found

    async def request_missing_keys(self) -> None:
        """Ask the sender's devices for the keys we lack, once per session."""
        for waiting in self._unreadable.values():
            if waiting.key_requested:
                continue
            waiting.key_requested = True
            try:
                await self.client.request_room_key(waiting.event)
            except Exception as error:  # a key request is a courtesy; never fatal
                log.info("Could not request a room key: %s", type(error).__name__)

    def given_up(self) -> list[MegolmEvent]:
        """Events still unreadable after the grace period; each is returned once."""
        now = self.clock()
        late = [
            event_id
            for event_id, waiting in self._unreadable.items()
            if now - waiting.first_seen >= self.grace
        ]
        return [self._unreadable.pop(event_id).event for event_id in late]

    def _consider(self, room_id: str, event: object) -> list[Incoming]:
        if isinstance(event, MegolmEvent):
            if event.sender != self.client.user_id and event.event_id not in self._unreadable:
                event.room_id = room_id
                self._unreadable[event.event_id] = _Unreadable(event, self.clock())
            return []
        if not self.is_command(event):
            return []
        assert isinstance(event, RoomMessageText)
        return [
            Incoming(
                event_id=event.event_id,
                room_id=room_id,
                sender=event.sender,
                body=event.body.strip(),
                sent_at=_moment(event.server_timestamp),
            )
        ]

    async def _before(self, room_id: str, token: str) -> list[object]:
        """The events before a limited timeline, back to the bot's own join, the history
        window, or what a few pages hold, oldest first."""
        oldest_wanted = self.clock() - self.history_window
        collected: list[object] = []
        start: str | None = token
        for _page in range(MAX_GAP_PAGES):
            if start is None:
                break
            response = await self.client.room_messages(
                room_id, start=start, direction=MessageDirection.back, limit=GAP_PAGE_SIZE
            )
            if not isinstance(response, RoomMessagesResponse) or not response.chunk:
                break
            done = False
            for event in response.chunk:  # newest first
                if _moment(event.server_timestamp) < oldest_wanted or (
                    isinstance(event, RoomMemberEvent)
                    and event.state_key == self.client.user_id
                    and event.membership == "join"
                ):
                    done = True
                    break
                collected.append(event)
            if done:
                break
            start = response.end
        collected.reverse()
        if collected:
            log.info("Read %d earlier events in %s to fill a gap", len(collected), room_id)
        return collected
