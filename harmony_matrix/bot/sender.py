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
  never logged.
- The state of each message (attempts, errors, retry times, sent, given up) is kept by
  ``services/delivery``; this module only talks to Matrix.

Only one sender may run at a time (two would race on ballot links).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from html import escape
from typing import Any

from nio import AsyncClient, MessageDirection, RoomMessagesResponse, RoomSendResponse

from harmony_matrix.bot.direct import (
    DeliveryFailure,
    DirectRooms,
    InviteBlocked,
    failure,
    raw_request,
)
from harmony_matrix.errors import HarmonyError
from harmony_matrix.services import ballot_delivery, delivery
from harmony_matrix.services.context import ServiceContext

log = logging.getLogger(__name__)

#: In the content of every (non-ballot) message: its transaction ID, to find it later.
MARKER = "org.harmonyparty.outbox"
#: Between two messages when the homeserver would not lift the bot's rate limits.
PACING = 0.2
#: How far back the bot looks for a message it may have sent more than a day ago.
LOOKUP_PAGES = 10


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
                type(error).__name__ if message.is_ballot else f"{type(error).__name__}: {error}"
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

    async def _room_of(self, message: delivery.Pending) -> str:
        if message.is_direct:
            return await self.direct.room_for(message.destination)
        await self.direct.load(message.destination)
        return message.destination

    async def _send_plain(self, message: delivery.Pending) -> bool:
        room_id = await self._room_of(message)
        if delivery.needs_lookup(message.created_at, self.ctx.now()):
            found = await self._find_sent(room_id, message.transaction_id)
            if found is not None:
                log.info("Outbox message %s was sent before, as %s", message.id, found)
                await delivery.mark_delivered(self.ctx, message.id, found)
                return True
        content = build_content(message, message.body, message.html, with_marker=True)
        event_id = await self._room_send(room_id, content, message.transaction_id)
        await delivery.mark_delivered(self.ctx, message.id, event_id)
        return True

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
