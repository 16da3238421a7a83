"""Work that falls due with time: ballots closed at their closing time, and reminders.

Everything here is worked out from the database at each call, so it survives restarts:
a round whose closing time passed while the bot was down is closed when it comes back,
and a reminder is queued with a dedupe key that makes it exactly-once however often,
and by however many bots, this runs. The bot's scheduler (bot/scheduler.py) calls these
in a loop and sleeps until :func:`next_due_at`.

Reminders, 24 hours and 1 hour before:
- a meeting's start, by direct message to everyone eligible to take part (the people
  informed of it), with the time and the place;
- a ballot's close, by direct message to everyone holding a right in it. The database
  does not know who has voted, and must not (docs/secret-ballot.md): the query reads
  ``voting_rights`` only, and the message says "if you have voted already, thank you".
  A window already open when the ballot opened is skipped: the ballot message itself
  has just arrived.

A reminder is sent only while its window is current: the 24-hour one from 24 hours
before until 1 hour before, the 1-hour one from then until the event. A bot that was
down for a window does not send it late, and nothing is sent once the event has begun.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.process import Phase
from harmony_matrix.constitution.scheduling import kind_name
from harmony_matrix.errors import HarmonyError
from harmony_matrix.i18n import Message, _, join, member_words
from harmony_matrix.services.announcements import announce
from harmony_matrix.services.ballots import close_ballot
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import meeting_ref
from harmony_matrix.services.membership import not_suspended
from harmony_matrix.services.preparation import eligible_people, when
from harmony_matrix.services.records import direct_message
from harmony_matrix.services.whereabouts import whereabouts
from harmony_matrix.storage.models import (
    BallotRound,
    BallotRoundStatus,
    Meeting,
    OutboxMessage,
    Person,
    VotingRight,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """A reminder window: it opens ``ahead`` of the event, and lasts until the next,
    shorter window opens (the shortest lasts until the event)."""

    name: str
    ahead: timedelta


#: Shortest first: the first window that ``now`` falls in is the current one.
WINDOWS = (Window("1h", timedelta(hours=1)), Window("24h", timedelta(hours=24)))
LONGEST = max(window.ahead for window in WINDOWS)


def current_window(event_at: datetime, now: datetime) -> Window | None:
    """The reminder window ``now`` is in before ``event_at``; None before the first one
    opens and from the event on."""
    if now >= event_at:
        return None
    left = event_at - now
    return next((window for window in WINDOWS if left <= window.ahead), None)


def window_openings(event_at: datetime) -> list[datetime]:
    """When each reminder window of an event opens."""
    return [event_at - window.ahead for window in WINDOWS]


class CloseRetries:
    """Rounds whose automatic close failed, and when each is tried again.

    A round that cannot close here (its key file is missing, say) stays open past its
    closing time; it is tried again after a minute, then at doubling intervals up to an
    hour, not in a tight loop, while the operator mends it. Held in memory: after a
    restart each is tried once at once, which is what an operator who mended it wants.
    """

    def __init__(
        self,
        first: timedelta = timedelta(minutes=1),
        longest: timedelta = timedelta(hours=1),
    ) -> None:
        self.first = first
        self.longest = longest
        #: round ID -> (failures in a row, when to try again)
        self._failures: dict[int, tuple[int, datetime]] = {}

    def failed(self, round_id: int, now: datetime) -> datetime:
        count = self._failures.get(round_id, (0, now))[0] + 1
        retry_at = now + min(self.first * 2 ** (count - 1), self.longest)
        self._failures[round_id] = (count, retry_at)
        return retry_at

    def forget(self, round_id: int) -> None:
        self._failures.pop(round_id, None)

    def keep_only(self, round_ids: set[int]) -> None:
        """Forget rounds no longer waiting to close (someone closed them by hand)."""
        for round_id in set(self._failures) - round_ids:
            del self._failures[round_id]

    def retry_at(self, round_id: int) -> datetime | None:
        failure = self._failures.get(round_id)
        return failure[1] if failure else None

    def waiting(self, round_id: int, now: datetime) -> bool:
        """True if the round failed to close and its next try is still to come."""
        retry_at = self.retry_at(round_id)
        return retry_at is not None and now < retry_at


async def close_due_rounds(ctx: ServiceContext, retries: CloseRetries | None = None) -> list[str]:
    """Close every open ballot whose closing time has come, as the operator would
    (``close_ballot`` with no actor), each in its own transaction; returns the meetings'
    references. A round that fails to close is logged and left for later (``retries``
    says when) without holding up the others."""
    retries = retries if retries is not None else CloseRetries()
    now = ctx.now()
    async with ctx.transaction() as session:
        due = list(
            await session.execute(
                select(BallotRound.id, BallotRound.meeting_id)
                .where(BallotRound.status == BallotRoundStatus.OPEN, BallotRound.closes_at <= now)
                .order_by(BallotRound.closes_at, BallotRound.id)
            )
        )
    retries.keep_only({round_id for round_id, _meeting in due})
    closed = []
    for round_id, meeting_id in due:
        if retries.waiting(round_id, now):
            continue
        ref = meeting_ref(meeting_id)
        try:
            await close_ballot(ctx, None, ref)
        except Exception as error:  # any failure: the other rounds still close
            retry_at = retries.failed(round_id, now)
            if isinstance(error, HarmonyError):
                log.error(
                    "The ballot of %s (round %s) did not close at its closing time: %s "
                    "Trying again at %s.",
                    ref,
                    round_id,
                    error,
                    retry_at.isoformat(),
                )
            else:
                log.exception(
                    "Closing the ballot of %s (round %s) failed; trying again at %s",
                    ref,
                    round_id,
                    retry_at.isoformat(),
                )
            continue
        retries.forget(round_id)
        closed.append(ref)
        await _announce_closed(ctx, round_id)
    return closed


async def _announce_closed(ctx: ServiceContext, round_id: int) -> None:
    """Tell the meeting's room that the ballot closed because its time came (nobody
    typed a command). Queued just after the close commits: should the bot die in
    between, this line is lost, never the close or its result."""
    async with ctx.transaction() as session:
        round_ = await session.get(BallotRound, round_id)
        assert round_ is not None
        meeting = await session.get(Meeting, round_.meeting_id)
        assert meeting is not None
        await announce(
            session,
            ctx,
            meeting,
            _(
                "Voting in %(kind)s %(ref)s is over. The secret ballot closed at its "
                "closing time: %(when)s.",
                kind=kind_name(meeting.kind),
                ref=meeting_ref(meeting.id),
                when=when(round_.closes_at, ctx.party.timezone),
            ),
            dedupe_key=f"ballot-closed:round:{round_.id}",
        )


async def queue_reminders(ctx: ServiceContext) -> int:
    """Queue the reminders whose window is current and that were not queued before;
    returns how many direct messages were queued."""
    now = ctx.now()
    async with ctx.transaction() as session:
        queued = await _meeting_reminders(session, ctx, now)
        queued += await _ballot_reminders(session, ctx, now)
    return queued


async def _meeting_reminders(session: AsyncSession, ctx: ServiceContext, now: datetime) -> int:
    meetings = await session.scalars(
        select(Meeting)
        .where(
            Meeting.starts_at > now,
            Meeting.starts_at <= now + LONGEST,
            # Not yet open: a meeting opened early needs no "starts in an hour".
            Meeting.phase == Phase.PLANNING,
        )
        .order_by(Meeting.id)
    )
    queued = 0
    for meeting in list(meetings):
        assert meeting.starts_at is not None
        window = current_window(meeting.starts_at, now)
        if window is None:
            continue
        # The start time is in the key: a meeting set for another time reminds again.
        starts = meeting.starts_at.astimezone(UTC).isoformat()
        prefix = f"remind:meeting:{meeting.id}:{window.name}:{starts}:person:"
        message = meeting_reminder(meeting, window, ctx.party.timezone)
        queued += await _remind(
            session, now, prefix, await eligible_people(session, meeting, now), message
        )
    return queued


async def _ballot_reminders(session: AsyncSession, ctx: ServiceContext, now: datetime) -> int:
    rounds = await session.execute(
        select(BallotRound, Meeting)
        .join(Meeting, Meeting.id == BallotRound.meeting_id)
        .where(
            BallotRound.status == BallotRoundStatus.OPEN,
            BallotRound.closes_at > now,
            BallotRound.closes_at <= now + LONGEST,
        )
        .order_by(BallotRound.id)
    )
    queued = 0
    for round_, meeting in list(rounds):
        window = current_window(round_.closes_at, now)
        # A window that was already open when the ballot opened reminds of nothing: the
        # ballot message has just arrived (a ballot set to close within the hour).
        if window is None or round_.opened_at > round_.closes_at - window.ahead:
            continue
        prefix = f"remind:round:{round_.id}:{window.name}:person:"
        message = ballot_reminder(meeting, round_, window, ctx.party.timezone)
        queued += await _remind(
            session, now, prefix, await right_holders(session, round_, now), message
        )
    return queued


async def right_holders(session: AsyncSession, round_: BallotRound, now: datetime) -> list[Person]:
    """Everyone holding a right in the round and not suspended (a suspended person
    cannot vote). Read from ``voting_rights`` alone, which does not change when a
    ballot is cast: whether someone has voted cannot be known here."""
    people = await session.scalars(
        select(Person)
        .join(VotingRight, VotingRight.person_id == Person.id)
        .where(VotingRight.round_id == round_.id, not_suspended(now))
        .order_by(Person.id)
    )
    return list(people)


async def _remind(
    session: AsyncSession, now: datetime, prefix: str, people: list[Person], message: Message
) -> int:
    # One query for the reminders already queued in this window, rather than one per
    # person: the scheduler runs this after every command.
    done = set(
        await session.scalars(
            select(OutboxMessage.dedupe_key).where(
                OutboxMessage.dedupe_key.startswith(prefix, autoescape=True)
            )
        )
    )
    queued = 0
    for person in people:
        key = f"{prefix}{person.id}"
        if key not in done and await direct_message(
            session, now, person, message=message, dedupe_key=key
        ):
            queued += 1
    return queued


def meeting_reminder(meeting: Meeting, window: Window, timezone: str) -> Message:
    assert meeting.starts_at is not None
    params = {
        "kind": kind_name(meeting.kind),
        "ref": meeting_ref(meeting.id),
        "when": when(meeting.starts_at, timezone),
    }
    if window.ahead <= timedelta(hours=1):
        opening = _(
            "Reminder: %(kind)s %(ref)s starts in less than an hour. It starts on %(when)s.",
            **params,
        )
    else:
        opening = _(
            "Reminder: %(kind)s %(ref)s starts in less than 24 hours. It starts on %(when)s.",
            **params,
        )
    lines = [opening, _("Question: %(question)s", question=member_words(meeting.question))]
    return join([*lines, *whereabouts(meeting)])


def ballot_reminder(
    meeting: Meeting, round_: BallotRound, window: Window, timezone: str
) -> Message:
    params = {
        "kind": kind_name(meeting.kind),
        "ref": meeting_ref(meeting.id),
        "when": when(round_.closes_at, timezone),
    }
    if window.ahead <= timedelta(hours=1):
        opening = _(
            "Reminder: the secret ballot of %(kind)s %(ref)s closes in less than an hour. "
            "It closes on %(when)s.",
            **params,
        )
    else:
        opening = _(
            "Reminder: the secret ballot of %(kind)s %(ref)s closes in less than 24 hours. "
            "It closes on %(when)s.",
            **params,
        )
    return join(
        [
            opening,
            _("Question: %(question)s", question=member_words(meeting.question)),
            _(
                "If you have voted already, thank you. You can ignore this message. If you "
                "have not, use the link in your ballot message from Harmony."
            ),
        ]
    )


async def next_due_at(ctx: ServiceContext, retries: CloseRetries | None = None) -> datetime | None:
    """The earliest moment something here falls due: a round's closing time (or the
    retry of a close that failed), a reminder window opening. It may be in the past: a
    round just became due. None when nothing is ahead."""
    now = ctx.now()
    async with ctx.transaction() as session:
        rounds = list(
            await session.execute(
                select(BallotRound.id, BallotRound.closes_at).where(
                    BallotRound.status == BallotRoundStatus.OPEN
                )
            )
        )
        starts = list(
            await session.scalars(
                select(Meeting.starts_at).where(
                    Meeting.starts_at > now, Meeting.phase == Phase.PLANNING
                )
            )
        )
    moments: list[datetime] = []
    for round_id, closes_at in rounds:
        retry_at = retries.retry_at(round_id) if retries is not None else None
        moments.append(closes_at if retry_at is None or closes_at > now else retry_at)
        moments += [opening for opening in window_openings(closes_at) if opening > now]
    for starts_at in starts:
        if starts_at is not None:
            moments += [opening for opening in window_openings(starts_at) if opening > now]
    return min(moments, default=None)
