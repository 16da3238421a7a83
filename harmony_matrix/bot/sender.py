"""The outbox sender: every queued message delivered once, whatever crashes happen.

Exactly once, by construction:

- A message is sent with a transaction ID derived from its row, the same at every
  attempt, so a resend after a crash (sent, but not yet marked sent) makes the
  homeserver return the first event instead of sending a second.
- Homeservers forget transaction IDs (Synapse after 24 hours): a message first tried
  more than 23 hours ago is first looked for in the room (the bot's own recent events
  carry the row's transaction ID under ``MARKER``).
- Ballot messages follow ``services/ballot_delivery``: a new link and a new transaction
  ID at each attempt, confirmed only after the homeserver accepted it. Their text is
  never logged. A secretary's sign-in link to the paper-ballot page goes the same way
  (``services/paper_sign_in``).
- The state of each message (attempts, errors, retry times, sent, given up) is kept by
  ``services/delivery``; this module only talks to Matrix.

Three kinds of message besides text:

- To a meeting (``meeting:12``): sent to the meeting's room as recorded when it is sent;
  while there is none, it waits (``delivery.wait_for_room``). A room message.
- With an attachment: the bytes are uploaded (encrypted when the room is) and sent as an
  ``m.file`` message, with the same transaction ID at every attempt.
- With a ``pin_key``: the first version sent is pinned in its room, later versions are
  edits of it (``m.replace``), and a version overtaken by a newer one before it was sent
  is not sent at all (only the newest goes out).

Only one sender may run at a time (two would race on ballot links).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import logging
from html import escape
from typing import Any

from nio import (
    AsyncClient,
    MessageDirection,
    RoomGetStateEventResponse,
    RoomMessagesResponse,
    RoomPutStateResponse,
    RoomSendResponse,
    UploadResponse,
)

from harmony_matrix.bot.direct import (
    DeliveryFailure,
    DirectRooms,
    InviteBlocked,
    failure,
    raw_request,
)
from harmony_matrix.errors import HarmonyError
from harmony_matrix.services import ballot_delivery, delivery, paper_sign_in
from harmony_matrix.services.context import ServiceContext

log = logging.getLogger(__name__)

#: In the content of every (non-ballot) message: its transaction ID, to find it later.
MARKER = "org.harmonyparty.outbox"
#: Between two messages when the homeserver would not lift the bot's rate limits.
PACING = 0.2
#: How far back the bot looks for a message it may have sent more than a day ago.
LOOKUP_PAGES = 10
#: The state event that lists a room's pinned messages.
PINNED_EVENTS = "m.room.pinned_events"


class OutboxSender:
    """Drains the outbox: ``run`` until stopped, ``wake`` after queueing a message."""

    def __init__(
        self,
        client: AsyncClient,
        ctx: ServiceContext,
        *,
        poll_seconds: float = 3.0,
        encrypt: bool = True,
        policy: delivery.RetryPolicy | None = None,
        batch: int = 100,
    ) -> None:
        self.client = client
        self.ctx = ctx
        self.direct = DirectRooms(client, ctx, encrypt=encrypt)
        self.poll_seconds = poll_seconds
        self.policy = policy or delivery.RetryPolicy()
        self.batch = batch
        self.pacing = 0.0
        self._wake = asyncio.Event()
        #: Messages handed over just after their commit (a command's reply): sent before
        #: anything else, without reading them back from the database.
        self._express: collections.deque[delivery.Pending] = collections.deque()
        self._stop: asyncio.Event | None = None
        self._paused_until = 0.0

    def wake(self, message: delivery.Pending | None = None) -> None:
        """A message was queued (and committed): send it now, not at the next poll. With
        the message itself, the sender need not read it back first (a reply's way to the
        member is then one request to the homeserver)."""
        if message is not None:
            self._express.append(message)
        self._wake.set()

    async def on_dm_invite(self, room_id: str, inviter: str) -> bool:
        """The sync loop saw ``inviter`` invite the bot to a direct room (see
        :meth:`DirectRooms.on_dm_invite`); their waiting messages go out at once."""
        became = await self.direct.on_dm_invite(room_id, inviter)
        if became:
            self.wake()
        return became

    async def lift_rate_limits(self) -> bool:
        """Ask the homeserver to lift the bot's rate limits (Synapse's admin API, allowed
        when the bot is a server admin); else pace sending, and say so once."""
        try:
            status, data = await raw_request(
                self.client,
                "POST",
                ["users", self.client.user_id, "override_ratelimit"],
                {"messages_per_second": 0, "burst_count": 0},
                base="/_synapse/admin/v1",
            )
        except Exception as error:  # any homeserver, any answer: pacing is the fallback
            status, data = 0, {"error": type(error).__name__}
        if status == 200:
            log.info("The homeserver lifted the rate limits of %s", self.client.user_id)
            self.pacing = 0.0
            return True
        self.pacing = PACING
        log.warning(
            "The homeserver would not lift the rate limits of %s (%s %s): sending at most "
            "one message every %.1f s. Make the bot a server admin, or raise its limits, "
            "for faster delivery.",
            self.client.user_id,
            status,
            data.get("errcode", data.get("error", "")),
            PACING,
        )
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Send due messages until ``stop`` is set; the message in hand is finished."""
        self._stop = stop
        await self.lift_rate_limits()
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.drain_once()
            except Exception:  # the database or the homeserver is away: try again later
                log.exception("The outbox sender failed; trying again shortly")
            if stop.is_set():
                break
            await self._sleep(await self._idle_seconds())

    async def _idle_seconds(self) -> float:
        wait = self.poll_seconds
        due = await delivery.next_due_at(self.ctx)
        if due is not None:
            wait = min(wait, max((due - self.ctx.now()).total_seconds(), 0.0))
        return wait

    async def _sleep(self, seconds: float) -> None:
        """Wait until woken, stopped, or ``seconds`` have passed."""
        assert self._stop is not None
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(self._stop.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def drain_once(self) -> int:
        """Send every message due now (until stopped); returns how many were delivered."""
        delivered = 0
        tried: set[int] = set()  # once per drain: a failed message waits for its retry time
        while self._express and not self._stopping():
            message = self._express.popleft()
            tried.add(message.id)
            if await self.send(message):
                delivered += 1
        while not self._stopping():
            due = [
                m for m in await delivery.due_messages(self.ctx, self.batch) if m.id not in tried
            ]
            if not due:
                break
            for message in due:
                if self._stopping():
                    break
                tried.add(message.id)
                await self._respect_pause()
                if self._stopping():
                    break
                if await self.send(message):
                    delivered += 1
                if self.pacing:
                    await asyncio.sleep(self.pacing)
        return delivered

    async def _respect_pause(self) -> None:
        """After a 429, wait as the homeserver asked (a stop ends the wait)."""
        wait = self._paused_until - asyncio.get_running_loop().time()
        if wait <= 0:
            return
        if self._stop is None:
            await asyncio.sleep(wait)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), wait)

    async def send(self, message: delivery.Pending) -> bool:
        """One delivery attempt; True if the message is now delivered."""
        try:
            if message.is_ballot:
                return await self._send_ballot(message)
            if message.is_sign_in:
                return await self._send_sign_in(message)
            if message.pin_key is not None and await self._skip_superseded(message):
                return True
            return await self._send_plain(message)
        except InviteBlocked as blocked:
            queued = await delivery.invites_blocked(
                self.ctx, message.destination, self.client.user_id
            )
            log.warning(
                "%s blocks invitations (%s); their direct messages wait (%s notices queued)",
                message.destination,
                blocked.reason,
                queued,
            )
        except DeliveryFailure as failed:
            await self._failed(message, failed)
        except HarmonyError as refused:  # a ballot closed or already sent meanwhile
            log.info("Outbox message %s is no longer to be sent: %s", message.id, refused)
            await delivery.give_up(self.ctx, message.id, str(refused), report=False)
        except Exception as error:  # network errors and the like
            # A ballot message's error is named by its type only: nothing that might quote
            # the message (and its link) reaches the log or the table.
            reason = (
                type(error).__name__ if message.carries_link else f"{type(error).__name__}: {error}"
            )
            await self._failed(message, DeliveryFailure(reason))
        return False

    async def _failed(self, message: delivery.Pending, failed: DeliveryFailure) -> None:
        if failed.retry_after is not None:
            loop = asyncio.get_running_loop()
            self._paused_until = max(
                self._paused_until, loop.time() + failed.retry_after.total_seconds()
            )
        outcome = await delivery.attempt_failed(
            self.ctx,
            message.id,
            failed.reason,
            retry_after=failed.retry_after,
            permanent=failed.permanent,
            counts=not failed.rate_limited,
            policy=self.policy,
        )
        log.warning(
            "Outbox message %s to %s failed (%s): %s",
            message.id,
            message.destination,
            outcome.value,
            failed.reason,
        )

    async def _room_of(self, message: delivery.Pending) -> str | None:
        """The room to send the message to, known to nio; None: its meeting has none yet."""
        if message.is_direct:
            return await self.direct.room_for(message.destination)
        room_id: str | None = message.destination
        if message.meeting_id is not None:
            room_id = await delivery.room_of_meeting(self.ctx, message.meeting_id)
            if room_id is None:
                return None
        assert room_id is not None
        await self.direct.load(room_id)
        return room_id

    async def _send_plain(self, message: delivery.Pending) -> bool:
        room_id = await self._room_of(message)
        if room_id is None:
            # Looked at again every ROOM_WAIT_POLL: logged quietly (giving up warns).
            outcome = await delivery.wait_for_room(self.ctx, message.id)
            log.debug(
                "Outbox message %s waits for the room of meeting %s (%s)",
                message.id,
                message.meeting_id,
                outcome.value,
            )
            return False
        if message.meeting_id is not None and await delivery.let_earlier_go_first(
            self.ctx, message.id
        ):
            return False
        # A pinned message's versions after the first edit the first, in the same room.
        pinned = await self._pinned_in(room_id, message)
        first_of_pin = message.pin_key is not None and pinned is None
        event_id: str | None = None
        if delivery.needs_lookup(message.created_at, self.ctx.now()):
            event_id = await self._find_sent(room_id, message.transaction_id)
            if event_id is not None:
                log.info("Outbox message %s was sent before, as %s", message.id, event_id)
        if event_id is None:
            if first_of_pin and message.first_attempt_at is None:
                await delivery.attempt_started(self.ctx, message.id)
            content = await self._content(message, room_id)
            if pinned is not None:
                content = edit_content(content, pinned.event_id)
            event_id = await self._room_send(room_id, content, message.transaction_id)
        if first_of_pin:
            # Pinned before it is marked sent: after a crash in between, the resend (same
            # transaction ID, same event) pins it then; pinning twice changes nothing.
            await self._pin(room_id, event_id)
            await delivery.mark_delivered(self.ctx, message.id, event_id, pinned_in=room_id)
        else:
            await delivery.mark_delivered(self.ctx, message.id, event_id)
        return True

    async def _content(self, message: delivery.Pending, room_id: str) -> dict[str, Any]:
        if message.attachment is None:
            return build_content(message, message.body, message.html, with_marker=True)
        return await self._file_content(message, room_id)

    async def _file_content(self, message: delivery.Pending, room_id: str) -> dict[str, Any]:
        """Upload the message's file and describe it as ``m.file`` content.

        The file is uploaded at every attempt. After a crash between an upload and the
        record that the message was sent, the next attempt uploads it again: the send,
        with the same transaction ID, then returns the first event (which points at the
        first upload), and the second upload stays unused in the media repository. That
        orphan is harmless (a few bytes, encrypted when the room is), and cheaper than
        another record before each send."""
        data = message.attachment
        assert data is not None
        mimetype = message.attachment_type or "application/octet-stream"
        encrypted = self._is_encrypted(room_id)
        response, keys = await self.client.upload(
            io.BytesIO(data),
            content_type=mimetype,
            filename=message.body,
            encrypt=encrypted,
            filesize=len(data),
        )
        if not isinstance(response, UploadResponse):
            raise failure(response, f"upload a file for {room_id}")
        content: dict[str, Any] = {
            "msgtype": "m.file",
            "body": message.body,
            "filename": message.body,
            "info": {"mimetype": mimetype, "size": len(data)},
            # In a direct room, the text sent with the file has pinged the member already.
            "m.mentions": {"user_ids": [message.mention]} if message.mention else {},
        }
        if encrypted:
            assert keys is not None
            content["file"] = {**keys, "url": response.content_uri}
        else:
            content["url"] = response.content_uri
        if message.reply_to_event_id:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": message.reply_to_event_id}}
        content[MARKER] = message.transaction_id
        return content

    def _is_encrypted(self, room_id: str) -> bool:
        """Whether nio encrypts what it sends to the room (it was loaded before)."""
        room = self.client.rooms.get(room_id)
        return room is not None and bool(room.encrypted)

    async def _pinned_in(
        self, room_id: str, message: delivery.Pending
    ) -> delivery.PinnedMessage | None:
        """The pinned message this version edits: none for the first version, or when
        the meeting has moved to another room (an event there cannot be edited here)."""
        if message.pin_key is None:
            return None
        pinned = await delivery.pinned_message(self.ctx, message.pin_key)
        return pinned if pinned is not None and pinned.room_id == room_id else None

    async def _skip_superseded(self, message: delivery.Pending) -> bool:
        """Settle, without sending it, a version of a pinned message that a newer one has
        overtaken. If it may have been sent as the first version before a crash (an
        attempt was recorded and no first version is), it is looked for in the room:
        found, it is pinned and recorded, so the newer version edits it rather than
        pinning a second message."""
        newer = await delivery.newer_version(self.ctx, message)
        if newer is None:
            return False
        if message.first_attempt_at is not None:
            room_id = await self._room_of(message)
            if room_id is not None and await self._pinned_in(room_id, message) is None:
                found = await self._find_sent(room_id, message.transaction_id)
                if found is not None:
                    log.info("Outbox message %s was sent before, as %s", message.id, found)
                    await self._pin(room_id, found)
                    await delivery.mark_delivered(self.ctx, message.id, found, pinned_in=room_id)
                    return True
        await delivery.mark_superseded(self.ctx, message.id, newer)
        log.info("Outbox message %s is not sent: message %s replaces it", message.id, newer)
        return True

    async def _pin(self, room_id: str, event_id: str) -> None:
        """Add the event to the room's pinned messages, keeping the others. Without the
        power to pin, the message stays sent, unpinned (a warning says so).

        Read, then written: a pin someone adds in between is lost. The bot pins rarely
        (once per meeting), and a moderator can pin again."""
        current = await self.client.room_get_state_event(room_id, PINNED_EVENTS)
        pinned: list[str] = []
        if isinstance(current, RoomGetStateEventResponse):
            if "errcode" in current.content:  # nio passes some errors (403) as content
                raise DeliveryFailure(
                    f"read the pinned events of {room_id}: {current.content.get('errcode')}"
                )
            pinned = [e for e in current.content.get("pinned", []) if isinstance(e, str)]
        elif current.status_code != "M_NOT_FOUND":  # M_NOT_FOUND: nothing pinned yet
            raise failure(current, f"read the pinned events of {room_id}")
        if event_id in pinned:
            return
        response = await self.client.room_put_state(
            room_id, PINNED_EVENTS, {"pinned": [*pinned, event_id]}
        )
        if isinstance(response, RoomPutStateResponse):
            return
        if response.status_code == "M_FORBIDDEN":
            log.warning(
                "I may not pin messages in %s (%s): %s is sent but not pinned. Give me the "
                "power to change the room's pinned messages.",
                room_id,
                response.message,
                event_id,
            )
            return
        raise failure(response, f"pin {event_id} in {room_id}")

    async def _send_ballot(self, message: delivery.Pending) -> bool:
        room_id = await self.direct.room_for(message.destination)
        prepared = await ballot_delivery.prepare_ballot_message(self.ctx, message.id)
        content = build_content(message, prepared.body, None, with_marker=False)
        event_id = await self._room_send(room_id, content, prepared.transaction_id)
        if not await ballot_delivery.confirm_ballot_message(self.ctx, prepared):
            log.warning("Ballot message %s was confirmed by another delivery first", message.id)
            return False
        await delivery.record_event_id(self.ctx, message.id, event_id)
        return True

    async def _send_sign_in(self, message: delivery.Pending) -> bool:
        """A secretary's sign-in link, minted now and confirmed like a ballot link."""
        room_id = await self.direct.room_for(message.destination)
        prepared = await paper_sign_in.prepare_sign_in_message(self.ctx, message.id)
        content = build_content(message, prepared.body, None, with_marker=False)
        event_id = await self._room_send(room_id, content, prepared.transaction_id)
        if not await paper_sign_in.confirm_sign_in_message(self.ctx, prepared):
            log.warning("Sign-in message %s was confirmed by another delivery first", message.id)
            return False
        await delivery.record_event_id(self.ctx, message.id, event_id)
        return True

    async def _room_send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        response = await self.client.room_send(
            room_id, "m.room.message", content, tx_id=txn_id, ignore_unverified_devices=True
        )
        if not isinstance(response, RoomSendResponse):
            raise failure(response, f"send to {room_id}")
        return response.event_id

    async def _find_sent(self, room_id: str, txn_id: str) -> str | None:
        """The event the bot sent with this transaction ID, among its recent events."""
        start: str | None = None
        for _page in range(LOOKUP_PAGES):
            response = await self.client.room_messages(
                room_id,
                start=start,
                direction=MessageDirection.back,
                limit=100,
                message_filter={"senders": [self.client.user_id]},
            )
            if not isinstance(response, RoomMessagesResponse):
                return None
            for event in response.chunk:
                source = getattr(event, "source", {}) or {}
                content = source.get("content", {})
                if source.get("sender") == self.client.user_id and content.get(MARKER) == txn_id:
                    return str(source.get("event_id") or event.event_id)
            if not response.chunk or not response.end:
                return None
            start = response.end
        return None


def build_content(
    message: delivery.Pending, body: str, html: str | None, *, with_marker: bool
) -> dict[str, Any]:
    """A message's Matrix content: a direct message is ``m.text`` that names and pings
    its recipient (default push rules silence ``m.notice``, and a ballot link must be
    noticed); a room message is a notice or text as queued, a reply when it answers."""
    mention = message.destination if message.is_direct else message.mention
    if mention is not None and message.is_direct:
        body = f"{mention}: {body}"
        if html is not None:
            link = f'<a href="https://matrix.to/#/{escape(mention)}">{escape(mention)}</a>'
            html = f"{link}: {html}"
    content: dict[str, Any] = {
        "msgtype": "m.notice" if message.notice and not message.is_direct else "m.text",
        "body": body,
        "m.mentions": {"user_ids": [mention]} if mention else {},
    }
    if html is not None:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = html
    if message.reply_to_event_id:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": message.reply_to_event_id}}
    if with_marker:
        content[MARKER] = message.transaction_id
    return content


def edit_content(content: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The content that replaces ``event_id`` with ``content`` (an ``m.replace`` edit):
    the new content in ``m.new_content``, and a fallback marked "* " for clients without
    edits. Nobody is pinged again (``m.mentions`` lists only new mentions, and a
    pinned message's versions mention the same people)."""
    new = {key: value for key, value in content.items() if key not in (MARKER, "m.relates_to")}
    edit = dict(new)
    edit["body"] = f"* {new['body']}"
    if "formatted_body" in new:
        edit["formatted_body"] = f"* {new['formatted_body']}"
    edit["m.mentions"] = {}
    edit["m.new_content"] = new
    edit["m.relates_to"] = {"rel_type": "m.replace", "event_id": event_id}
    if MARKER in content:
        edit[MARKER] = content[MARKER]
    return edit
