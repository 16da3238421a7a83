"""The bot's scheduler: ballots closed at their closing time, reminders queued on time.

What is due is worked out from the database each time (services/due_work.py), so
nothing is lost across a restart and nothing is done twice; this module only decides
when to look again: at the next moment something falls due, at least every
``longest_sleep`` (a ballot opened or a meeting rescheduled meanwhile), and at once
when woken (after a command, which may have changed a deadline).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from harmony_matrix.services import due_work
from harmony_matrix.services.context import ServiceContext

log = logging.getLogger(__name__)


class Scheduler:
    """Runs due work until stopped; ``wake`` to look again now."""

    def __init__(
        self,
        ctx: ServiceContext,
        wake_sender: Callable[[], None],
        *,
        rooms_changed: Callable[[], None] = lambda: None,
        longest_sleep: float = 60.0,
        after_failure: float = 30.0,
        shortest_sleep: float = 0.05,
    ) -> None:
        self.ctx = ctx
        self.wake_sender = wake_sender
        #: A round closed with a winner may finish a Thing, whose room then goes
        #: read-only: the room keeper is told at once.
        self.rooms_changed = rooms_changed
        self.longest_sleep = longest_sleep
        self.after_failure = after_failure
        #: A floor under every sleep: whatever the database says, never a busy loop.
        self.shortest_sleep = shortest_sleep
        self.retries = due_work.CloseRetries()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.run_once()
                wait = await self._seconds_to_next()
            except Exception:  # the database is away: try again shortly
                log.exception("The scheduler failed; trying again shortly")
                wait = self.after_failure
            await _first_of(self._wake, stop, within=wait)

    async def run_once(self) -> None:
        """Close the rounds due, queue the reminders due, and have them sent."""
        closed = await due_work.close_due_rounds(self.ctx, self.retries)
        if closed:
            log.info("Closed at their closing time: %s", ", ".join(closed))
            self.rooms_changed()
        queued = await due_work.queue_reminders(self.ctx)
        if queued:
            log.info("Reminders queued: %s", queued)
        if closed or queued:
            self.wake_sender()

    async def _seconds_to_next(self) -> float:
        due = await due_work.next_due_at(self.ctx, self.retries)
        if due is None:
            return self.longest_sleep
        seconds = (due - self.ctx.now()).total_seconds()
        return min(max(seconds, self.shortest_sleep), self.longest_sleep)


async def _first_of(*events: asyncio.Event, within: float) -> None:
    """Wait until one of ``events`` is set, or ``within`` seconds have passed."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
