"""Acting on a command exactly once: the record that it was handled, its effects and its
queued answer are one transaction (``ServiceContext.unit_of_work``).

If the bot dies before the transaction commits, nothing happened and the command is found
again in the sync stream after the restart; if it dies after, the record is there and the
command is not handled a second time, and the answer waits in the outbox.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Literal

from harmony_matrix.bot.inbox import Incoming
from harmony_matrix.i18n import Message, _
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.delivery import Pending, queue_reply
from harmony_matrix.services.handled_events import claim
from harmony_matrix.services.lookup import language_of

log = logging.getLogger(__name__)


class Outcome:
    HANDLED = "handled"
    OFFLINE = "offline"
    UNREADABLE = "undecryptable"


#: The command's answer, rendered: (language, plain body, HTML body or None).
Answer = tuple[str, str, str | None]
Dispatch = Callable[[Incoming], Awaitable[Answer | None]]


def _plain_answer(message: Message, language: str) -> Answer:
    text = message.render(language)
    return language, text, html.escape(text).replace("\n", "<br>")


class _Refused(Exception):
    """A use case refused inside the command's transaction: roll it back, keep the answer."""

    def __init__(self, answer: Answer | None) -> None:
        super().__init__("refused")
        self.answer = answer


class CommandHandler:
    def __init__(
        self,
        ctx: ServiceContext,
        dispatch: Dispatch,
        *,
        offline_window: timedelta,
        wall_clock: Callable[[], datetime],
        delivered: Callable[[Pending], None],
    ) -> None:
        self.ctx = ctx
        self.dispatch = dispatch
        self.offline_window = offline_window
        #: Matrix timestamps are compared with the real time, whatever clock the rules use.
        self.wall_clock = wall_clock
        #: Hands a committed answer to the outbox sender, which sends it at once.
        self.delivered = delivered

    async def handle(self, incoming: Incoming) -> bool:
        """Act on a command unless it was acted on before; True if it was acted on now."""
        started = time.perf_counter()
        too_old = self.wall_clock() - incoming.sent_at > self.offline_window
        outcome = Outcome.OFFLINE if too_old else Outcome.HANDLED
        try:
            queued = await self._record(incoming, outcome, None if too_old else self.dispatch)
        except _Refused as refused:
            # A use case refused part-way: nothing it (or the command) wrote is kept; the
            # event is recorded with the refusal as its answer.
            queued = await self._record(incoming, outcome, refused.answer)
        if queued is False:
            return False
        log.info(
            "Handled %s in %s (%s) in %.1f ms",
            incoming.event_id,
            incoming.room_id,
            outcome,
            (time.perf_counter() - started) * 1000,
        )
        if queued is not None:
            self.delivered(queued)
        return True

    async def _record(
        self, incoming: Incoming, outcome: str, act: Dispatch | Answer | None
    ) -> Pending | Literal[False] | None:
        """One transaction: claim the event, act on it (``act``: the dispatcher; an answer
        already made; None for "send it again"), queue the answer. False if the event was
        claimed before."""
        async with self.ctx.unit_of_work() as work:
            if not await claim(
                work.session,
                self.ctx.now(),
                event_id=incoming.event_id,
                room_id=incoming.room_id,
                outcome=outcome,
            ):
                return False
            if act is None:
                language = await language_of(
                    work.session, incoming.sender, self.ctx.party.default_language
                )
                answer: Answer | None = _plain_answer(
                    _(
                        "I was offline when you sent this, so I have not acted on it. "
                        "Please send it again."
                    ),
                    language,
                )
            elif callable(act):
                answer = await act(incoming)
                if work.failed:
                    raise _Refused(answer)  # rolls the unit of work back
            else:
                answer = act
            if answer is None:
                return None
            language, body, formatted = answer
            return await queue_reply(
                work.session,
                self.ctx.now(),
                room_id=incoming.room_id,
                to_event_id=incoming.event_id,
                sender=incoming.sender,
                language=language,
                body=body,
                html=formatted,
            )

    async def unreadable(self, event_id: str, room_id: str, sender: str) -> None:
        """Tell someone, once, that the bot could not decrypt their message."""
        async with self.ctx.unit_of_work() as work:
            session = work.session
            if not await claim(
                session,
                self.ctx.now(),
                event_id=event_id,
                room_id=room_id,
                outcome=Outcome.UNREADABLE,
            ):
                return
            language = await language_of(session, sender, self.ctx.party.default_language)
            language, body, formatted = _plain_answer(
                _(
                    "I could not read your encrypted message: the key to decrypt it did not "
                    "reach me. If it was a command for me, please send it again. If this "
                    "keeps happening, sign out and in again, or verify your device."
                ),
                language,
            )
            queued = await queue_reply(
                session,
                self.ctx.now(),
                room_id=room_id,
                to_event_id=event_id,
                sender=sender,
                language=language,
                body=body,
                html=formatted,
            )
        self.delivered(queued)
