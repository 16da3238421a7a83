"""The bot's life: wait until no other bot is active (bot/leadership.py), log in or restore
its device, cross-sign it, then run the sync loop, the outbox sender, the room keeper and
the scheduler until told to stop (SIGTERM, Ctrl-C) or until it loses its lock. Its health
port (bot/health.py), when configured, is open all along, the wait for the lock included."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nio import AsyncClient, InviteMemberEvent, MegolmEvent, RoomUpgradeEvent, SyncResponse

from harmony_matrix.bot.commands import (
    BotCommandSettings,
    CommandEvent,
    Dispatcher,
    default_commands,
)
from harmony_matrix.bot.commands.dispatch import Outcome, Result
from harmony_matrix.bot.handling import Answer, CommandHandler
from harmony_matrix.bot.health import BotHealth, health_app, serving
from harmony_matrix.bot.identity import CrossSigningError, ensure_cross_signed
from harmony_matrix.bot.inbox import Inbox, Incoming
from harmony_matrix.bot.leadership import Leadership, keep_leading, leadership_for
from harmony_matrix.bot.replies import rendered
from harmony_matrix.bot.rooms import ReconcileReport, RoomKeeper
from harmony_matrix.bot.scheduler import Scheduler
from harmony_matrix.bot.sender import OutboxSender
from harmony_matrix.bot.session import SyncPosition, open_session
from harmony_matrix.bot.sync import SyncLoop
from harmony_matrix.config import Config
from harmony_matrix.errors import HarmonyError
from harmony_matrix.metrics import BotMetrics
from harmony_matrix.services import delivery
from harmony_matrix.services.context import ServiceContext, current_unit_of_work
from harmony_matrix.services.lookup import person_by_matrix_id

log = logging.getLogger(__name__)


def wall_clock() -> datetime:
    return datetime.now(UTC)


class Bot:
    """One running bot. ``run`` returns when ``stop`` is set, with no work half done."""

    def __init__(self, config: Config, ctx: ServiceContext | None = None) -> None:
        self.config = config
        self.settings = config.matrix
        self.ctx = ctx or ServiceContext.from_config(config)
        self.stop = asyncio.Event()
        self.ready = asyncio.Event()
        self._reconcile_now = asyncio.Event()
        self._rooms_changed = False
        self._told_unreadable: set[tuple[str, str]] = set()
        self.metrics = BotMetrics()
        self.health = BotHealth()
        #: How each command of the sync response being handled ended, by event ID:
        #: counted once its transaction has committed (see _on_sync).
        self._outcomes: dict[str, Outcome | None] = {}

    async def run(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if self.settings.health_port:
                # Open while the bot waits for its lock too: a standby says so.
                app = health_app(self.health, self.metrics, self.ctx)
                await stack.enter_async_context(
                    serving(app, self.settings.health_host, self.settings.health_port)
                )
            await self._lead()

    async def _lead(self) -> None:
        # Before the login: a waiting bot touches neither the homeserver nor the store.
        leadership = leadership_for(self.ctx.engine.url)
        if not await leadership.acquire(self.stop):
            return
        self.health.became_active()
        try:
            client = await open_session(self.settings)
            try:
                await self._run(client, leadership)
            finally:
                await client.close()
        finally:
            self.health.stood_down()
            await leadership.release()

    async def _run(self, client: AsyncClient, leadership: Leadership) -> None:
        try:
            status = await ensure_cross_signed(
                client, Path(self.settings.store_path), self.settings.password or None
            )
            log.info("Cross-signing: %s", status)
        except CrossSigningError as error:
            # The bot still works; Element will show its device as not verified by its
            # owner (and may, one day, refuse to share keys with it): the operator must act.
            log.error("The bot's device is not cross-signed: %s", error)
        self.client = client
        self.sender = OutboxSender(client, self.ctx, encrypt=self.settings.encrypt_rooms)
        self.scheduler = Scheduler(
            self.ctx, self.sender.wake, rooms_changed=self._reconcile_now.set
        )
        self.dispatcher = Dispatcher(
            default_commands(), BotCommandSettings.from_config(self.config)
        )
        server_name = self.settings.user_id.partition(":")[2]
        self.rooms = RoomKeeper(
            client, self.ctx, server_name=server_name, encrypt=self.settings.encrypt_rooms
        )
        self.inbox = Inbox(
            client,
            prefix=self.settings.command_prefix,
            grace=timedelta(seconds=self.settings.undecryptable_grace_seconds),
            history_window=timedelta(minutes=self.settings.offline_window_minutes, hours=1),
            clock=wall_clock,
        )
        self.handler = CommandHandler(
            self.ctx,
            self._answer,
            offline_window=timedelta(minutes=self.settings.offline_window_minutes),
            wall_clock=wall_clock,
            delivered=self._delivered,
        )
        self.sync = SyncLoop(client, SyncPosition(Path(self.settings.store_path)), self._on_sync)
        tasks = [
            asyncio.create_task(self.sync.run(self.stop), name="sync"),
            asyncio.create_task(self.sender.run(self.stop), name="sender"),
            asyncio.create_task(self._keep_rooms(), name="rooms"),
            asyncio.create_task(self.scheduler.run(self.stop), name="scheduler"),
            asyncio.create_task(keep_leading(leadership, self.stop), name="leadership"),
        ]
        try:
            # The first of them to fail stops the others: a bot without its sender or its
            # sync loop would look alive and do nothing, one without its lock must not act.
            done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            self.stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _delivered(self, message: delivery.Pending) -> None:
        self.sender.wake(message)
        # The command may have opened a ballot or moved a meeting: new deadlines.
        self.scheduler.wake()

    async def _answer(self, incoming: Incoming) -> Answer | None:
        event = CommandEvent(
            event_id=incoming.event_id,
            room_id=incoming.room_id,
            sender=incoming.sender,
            body=incoming.body,
        )
        answered = await self.dispatcher.answer(self.ctx, event)
        if answered is None:
            self._outcomes[incoming.event_id] = None  # not a command: nothing to count
            return None
        reply, outcome = answered
        work = current_unit_of_work()
        if outcome.result is Result.OK and work is not None and work.failed:
            # A use case refused inside the command's transaction, which is rolled back
            # (bot/handling.py), though the command's reply reads like a success.
            outcome = Outcome(outcome.command, Result.REFUSED)
        self._outcomes[incoming.event_id] = outcome
        # Acted on once the command has committed (see _on_sync): the room keeper reads
        # the register in a transaction of its own.
        self._rooms_changed = self._rooms_changed or reply.rooms_changed
        return rendered(reply)

    async def _on_sync(self, response: SyncResponse, first_ever: bool) -> None:
        await self._invitations(response)
        await self._tombstones(response)
        if first_ever:
            # History from before the bot's first start: never acted on.
            self.ready.set()
            self.health.synced()
            self._reconcile_now.set()
            return
        found = await self.inbox.commands_in(response) + self.inbox.retry_unreadable()
        for incoming in found:
            await self._handle(incoming)
            if self._rooms_changed:
                self._rooms_changed = False
                self._reconcile_now.set()
        await self.inbox.request_missing_keys()
        for event in self.inbox.given_up():
            await self._unreadable(event)
        self.ready.set()
        self.health.synced()

    async def _handle(self, incoming: Incoming) -> None:
        """Handle a command, and count it once it has committed (a command handled
        before, found again after a restart, is not counted twice)."""
        try:
            acted = await self.handler.handle(incoming)
            dispatched = incoming.event_id in self._outcomes
            outcome = self._outcomes.get(incoming.event_id)
        finally:
            self._outcomes.pop(incoming.event_id, None)
        if not acted or (dispatched and outcome is None):
            return
        if outcome is None:  # too old to act on: the dispatcher never saw it
            outcome = Outcome(self.dispatcher.command_name(incoming.body), Result.OFFLINE)
        self.metrics.command_handled(outcome.command, outcome.result)

    async def _unreadable(self, event: MegolmEvent) -> None:
        # Once per sender and key: a device that shares no keys would otherwise get an
        # answer to every message it sends.
        key = (event.sender, event.session_id)
        if key in self._told_unreadable:
            return
        self._told_unreadable.add(key)
        await self.handler.unreadable(event.event_id, event.room_id, event.sender)

    async def _invitations(self, response: SyncResponse) -> None:
        for room_id, info in response.rooms.invite.items():
            invite = next(
                (
                    event
                    for event in info.invite_state
                    if isinstance(event, InviteMemberEvent)
                    and event.state_key == self.client.user_id
                    and event.membership == "invite"
                ),
                None,
            )
            if invite is None:
                continue
            if not await self._on_register(invite.sender):
                log.info("Declining an invitation from %s: not on the register", invite.sender)
                await self.client.room_leave(room_id)
                continue
            if invite.content.get("is_direct"):
                await self.sender.on_dm_invite(room_id, invite.sender)
            else:
                await self.client.join(room_id)

    async def _tombstones(self, response: SyncResponse) -> None:
        for room_id, info in response.rooms.join.items():
            for event in [*info.state, *info.timeline.events]:
                if isinstance(event, RoomUpgradeEvent) and event.replacement_room:
                    via = [event.sender.partition(":")[2]]
                    await self.rooms.follow_tombstone(room_id, event.replacement_room, via)

    async def _on_register(self, matrix_id: str) -> bool:
        try:
            async with self.ctx.transaction() as session:
                await person_by_matrix_id(session, matrix_id)
        except HarmonyError:
            return False
        return True

    async def _keep_rooms(self) -> None:
        """Rooms in step with the register: after the first sync, every few minutes, when
        a room was linked, and when a suspension starts or ends."""
        await _first(self.ready.wait(), self.stop.wait())
        period = timedelta(minutes=self.settings.reconcile_minutes)
        while not self.stop.is_set():
            self._reconcile_now.clear()
            wait = period
            try:
                report = await self.rooms.reconcile()
                await self._after_reconcile(report)
                if report.next_change_at is not None:
                    wait = min(wait, max(timedelta(0), report.next_change_at - self.ctx.now()))
            except Exception:
                log.exception("Bringing the rooms in step with the register failed")
            await _first(self._reconcile_now.wait(), self.stop.wait(), within=wait.total_seconds())

    async def _after_reconcile(self, report: ReconcileReport) -> None:
        if report.changed or report.problems or report.invite_failures:
            log.info("Rooms: %s", report.summary())
        if report.changed:
            # A Thing's new room: its announcements have been waiting for it.
            self.sender.wake()
        for problem in report.problems:
            # The operator or a secretary must act (give the bot power, invite it back):
            # the bot cannot mend these itself, and says so once.
            log.warning(
                "Room %s of %s: %s %s",
                problem.room_id,
                problem.owner,
                problem.problem.value,
                problem.detail,
            )
        for failure in report.invite_failures:
            if failure.blocked:
                await delivery.invites_blocked(self.ctx, failure.user_id, self.client.user_id)
                self.sender.wake()


async def _first(*waits: Awaitable[object], within: float | None = None) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
