"""Figures for monitoring (``/metrics``), read from the database: how the outbox is doing
and how many ballots each recent round holds.

Only counts, and never per person: no Matrix ID, no name, no link, no token. The
ballot counts are how many have voted, never who. An open round's count rises by one
with each ballot, so a series of scrapes dates each cast to within a scrape, as the web
companion's own access log dates each POST: neither says whose ballot it was (decision
87).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select

from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import meeting_ref
from harmony_matrix.storage.models import (
    BallotRound,
    BallotRoundStatus,
    CountedBallot,
    OutboxMessage,
    SealedBallot,
)

#: A closed round is reported for this long after its close, then no more: the number
#: of series stays small however many rounds the party has held.
CLOSED_ROUNDS_SHOWN_FOR = timedelta(days=7)


@dataclass(frozen=True)
class OutboxFigures:
    #: Messages neither sent nor given up.
    unsent: int
    #: Seconds since the oldest of them that is due was queued (0 when there is none):
    #: one waiting for its next try (a member who refuses invitations is asked again
    #: daily) is left out, or it would hold the figure up for ever and hide a stall.
    oldest_unsent_seconds: float
    #: Messages given up (the member could not be reached), direct and to rooms.
    failed_direct: int
    failed_room: int


@dataclass(frozen=True)
class RoundFigures:
    #: The meeting's reference, e.g. "M-12".
    meeting: str
    number: int
    status: BallotRoundStatus
    #: Ballots cast so far (open) or counted (closed), online and on paper.
    ballots: int


async def outbox_figures(ctx: ServiceContext) -> OutboxFigures:
    now = ctx.now()
    unsettled = (OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
    async with ctx.transaction() as session:
        unsent = await session.scalar(select(func.count()).where(*unsettled))
        due = or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now)
        oldest = await session.scalar(
            select(func.min(OutboxMessage.created_at)).where(*unsettled, due)
        )
        failed_rows = await session.execute(
            select(OutboxMessage.is_direct, func.count())
            .where(OutboxMessage.failed_at.is_not(None))
            .group_by(OutboxMessage.is_direct)
        )
        failed = {bool(direct): count for direct, count in failed_rows}
    age = 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)
    return OutboxFigures(
        unsent=int(unsent or 0),
        oldest_unsent_seconds=age,
        failed_direct=failed.get(True, 0),
        failed_room=failed.get(False, 0),
    )


async def round_figures(ctx: ServiceContext) -> list[RoundFigures]:
    """Every open round, and every round closed within ``CLOSED_ROUNDS_SHOWN_FOR``, with
    its number of ballots: sealed ones while it is open, counted ones once closed."""
    since = ctx.now() - CLOSED_ROUNDS_SHOWN_FOR
    rounds = select(BallotRound.id, BallotRound.meeting_id, BallotRound.number)
    async with ctx.transaction() as session:
        open_rows = await session.execute(
            rounds.add_columns(
                select(func.count())
                .where(SealedBallot.round_id == BallotRound.id)
                .scalar_subquery()
            ).where(BallotRound.status == BallotRoundStatus.OPEN)
        )
        closed_rows = await session.execute(
            rounds.add_columns(
                select(func.count())
                .where(CountedBallot.round_id == BallotRound.id)
                .scalar_subquery()
            ).where(
                BallotRound.status == BallotRoundStatus.CLOSED,
                BallotRound.closed_at >= since,
            )
        )
        found = [
            RoundFigures(meeting_ref(meeting_id), number, status, ballots)
            for status, rows in (
                (BallotRoundStatus.OPEN, open_rows),
                (BallotRoundStatus.CLOSED, closed_rows),
            )
            for _id, meeting_id, number, ballots in rows
        ]
    return sorted(found, key=lambda figures: (figures.meeting, figures.number))
