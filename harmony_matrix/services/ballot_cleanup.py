"""After a round is counted: destroy its key and scrub what its ballots left behind.

The count is committed first; then the round's private key is destroyed (from then on
no copy of its sealed ballots, anywhere, can be opened) and the ballot tables are
rewritten into fresh storage (storage/scrubbing.py). A scrub can be held up by a
reader or a long transaction; it is retried a few times at once, then reported as an
error and retried at every later open and close of a ballot, and by
``harmony ballots clean-up``. A round's ``cleaned_at`` is set only once it worked.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import select, update

from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import BallotRound, BallotRoundStatus
from harmony_matrix.storage.scrubbing import ScrubIncomplete, scrub

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanupReport:
    #: Closed rounds whose clean-up is still to do.
    pending: tuple[int, ...] = ()
    reason: str = ""
    #: Left for after the unit of work in progress has committed.
    deferred: bool = False

    @property
    def done(self) -> bool:
        return not self.pending and not self.deferred


async def clean_up_after_close(
    ctx: ServiceContext, *, attempts: int = 4, first_delay: float = 0.25
) -> CleanupReport:
    """Destroy the keys of counted rounds and scrub their ballots' old storage.

    Inside a unit of work (a bot command) this waits for its commit: a key destroyed
    before the count is committed could leave a round that can never be counted, and the
    scrub needs the database to itself. The report then says nothing is done yet.
    """

    async def later() -> None:
        await clean_up_after_close(ctx, attempts=attempts, first_delay=first_delay)

    if ctx.defer_until_committed(later):
        return CleanupReport(deferred=True)
    async with ctx.transaction() as session:
        rounds = list(
            await session.execute(
                select(BallotRound.id, BallotRound.status, BallotRound.seal_key).where(
                    BallotRound.seal_key.is_not(None), BallotRound.cleaned_at.is_(None)
                )
            )
        )
    store = ctx.round_keys
    pending = tuple(r.id for r in rounds if r.status is BallotRoundStatus.CLOSED)
    for round_ in rounds:
        if round_.status is BallotRoundStatus.CLOSED:
            await asyncio.to_thread(store.destroy, round_.seal_key)
    open_keys = {r.seal_key for r in rounds if r.status is BallotRoundStatus.OPEN}
    await asyncio.to_thread(store.sweep, open_keys)
    if not pending:
        return CleanupReport()
    reason = ""
    for attempt in range(attempts):
        try:
            await scrub(ctx.engine)
        except ScrubIncomplete as error:
            reason = str(error)
            log.warning("ballot clean-up, attempt %s of %s: %s", attempt + 1, attempts, reason)
            if attempt + 1 < attempts:
                await asyncio.sleep(first_delay * 2**attempt)
            continue
        async with ctx.transaction() as session:
            await session.execute(
                update(BallotRound).where(BallotRound.id.in_(pending)).values(cleaned_at=ctx.now())
            )
        return CleanupReport()
    log.error(
        "The clean-up after closing ballot rounds %s is not complete: %s. Their keys are "
        "destroyed, so their sealed ballots cannot be opened, but old copies remain in the "
        "database files until it succeeds. It is retried at the next ballot opened or "
        "closed, and by `harmony ballots clean-up`.",
        ", ".join(map(str, pending)),
        reason,
    )
    return CleanupReport(pending, reason)
