"""The sync loop: read the homeserver's stream, keep end-to-end encryption in order, hand
each response to the bot, and save the position only once the response was handled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import ClientError
from nio import AsyncClient, SyncError, SyncResponse

from harmony_matrix.bot.backoff import Backoff, sleep_unless
from harmony_matrix.bot.session import CREDENTIALS, UNKNOWN_TOKEN, SyncPosition, revoked

log = logging.getLogger(__name__)

#: How long the homeserver holds a sync open when nothing happens (milliseconds).
LONG_POLL_MS = 30_000

#: Called with each sync response and whether it is the very first one (whose timeline is
#: history the bot must not act on).
OnResponse = Callable[[SyncResponse, bool], Awaitable[None]]


class SyncLoop:
    def __init__(
        self,
        client: AsyncClient,
        position: SyncPosition,
        on_response: OnResponse,
        *,
        long_poll_ms: int = LONG_POLL_MS,
    ) -> None:
        self.client = client
        self.position = position
        self.on_response = on_response
        self.long_poll_ms = long_poll_ms
        self.backoff = Backoff()
        #: Set after each handled response (tests and the app wait on it).
        self.synced = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        token = self.position.load()
        first_ever = token is None
        # After a restart nio knows no room: the first request asks for the full state
        # (membership, encryption) with only the events since the saved position.
        full_state = True
        while not stop.is_set():
            try:
                response = await self._sync(token, full_state, stop)
            except (ClientError, TimeoutError, OSError) as error:
                delay = self.backoff.next_delay()
                log.warning("Sync failed (%s); trying again in %.1f s", error, delay)
                await sleep_unless(stop, delay)
                continue
            if response is None:  # stopping
                break
            if isinstance(response, SyncError):
                if response.status_code == UNKNOWN_TOKEN:
                    # Signed out: no retry will ever succeed, and a bot that looks alive
                    # while it reads nothing is worse than one that stops and says why.
                    raise revoked(self.position.path.parent / CREDENTIALS, str(response.message))
                retry_after = getattr(response, "retry_after_ms", None)
                delay = self.backoff.next_delay(retry_after)
                log.warning(
                    "Sync refused (%s %s); trying again in %.1f s",
                    response.status_code,
                    response.message,
                    delay,
                )
                await sleep_unless(stop, delay)
                continue
            self.backoff.reset()
            await self._keep_keys()
            try:
                # A response is handled whole, even when stopping: a stop waits for it.
                await asyncio.shield(self.on_response(response, first_ever))
            except Exception:
                # The database is away, say: the position stays where it was, so the same
                # events come again (and the ledger skips those already handled).
                delay = self.backoff.next_delay()
                log.exception("Handling a sync response failed; trying again in %.1f s", delay)
                await sleep_unless(stop, delay)
                continue
            # In a thread: the outbox sender, woken by the response's commands, sends their
            # answers meanwhile.
            await asyncio.to_thread(self.position.save, response.next_batch)
            token = response.next_batch
            first_ever = False
            full_state = False
            self.synced.set()
            self.synced.clear()

    async def _sync(
        self, token: str | None, full_state: bool, stop: asyncio.Event
    ) -> SyncResponse | SyncError | None:
        """One sync request, abandoned (None) if the bot is told to stop while it waits."""
        request = asyncio.ensure_future(
            self.client.sync(
                timeout=0 if full_state else self.long_poll_ms,
                since=token,
                full_state=full_state or None,
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        done, _pending = await asyncio.wait(
            {request, stopping}, return_when=asyncio.FIRST_COMPLETED
        )
        if request not in done:
            # Nothing was handled from this request and the position was not saved: the
            # next start asks again from the same place.
            request.cancel()
            await asyncio.gather(request, return_exceptions=True)
            return None
        stopping.cancel()
        return request.result()

    async def _keep_keys(self) -> None:
        """What nio's sync_forever does between syncs: upload our one-time keys, learn the
        devices of the people in encrypted rooms, and send queued to-device messages."""
        client = self.client
        try:
            if client.should_upload_keys:
                await client.keys_upload()
            if client.should_query_keys:
                await client.keys_query()
            if client.should_claim_keys:
                await client.keys_claim(client.get_users_for_key_claiming())
            await client.send_to_device_messages()
        except (ClientError, TimeoutError, OSError) as error:
            # Tried again after the next sync; the response itself is still handled.
            log.warning("Key maintenance failed (%s)", error)
