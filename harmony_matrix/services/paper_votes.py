"""A vote held on paper, entered as its ballots and counted by STAR.

Clause: "potentially culminating in a ballot utilising the STAR voting system, and no
other voting system". A secretary enters the paper ballots as a CSV file in the format
``harmony tally`` reads (voting/ballot_csv.py): row 1 names the options, each further
row is one ballot's scores from 0 to 5. They are counted by the same STAR count as an
online ballot (``ballots.count``), stored and published the same way (``counted_ballots``,
in a random order, each with a receipt), and the outcome applied the same way.

**Either online or on paper, never both.** Nobody who voted online may also vote on
paper, and Harmony does not know who voted online (docs/secret-ballot.md: a right is
never marked used). So paper ballots are taken only for a vote that has no online
ballot, and a vote with paper ballots cannot be opened online (it is concluded). The
ballots may be no more than the people present and not suspended, who were the ones
entitled to a paper ballot when it was handed out.

**Deciding on paper first** (:func:`prepare_paper_vote`, ``!ballot paper``): the
organiser says the vote is held on paper before the papers are handed out. That is
recorded as the vote's round, marked ``on_paper`` and waiting for its ballots (closed,
with no result yet; see :func:`awaiting_paper`), so an online ballot cannot be opened
for the same vote afterwards (``open_ballot`` refuses a vote that has a round) and
nobody who is given a paper ballot can also get a link. If an online ballot is already
open, the attendees' online rights are withdrawn first, but only while nobody has voted
online (the turnout, which is all Harmony knows, is 0): their links stop working, a
queued link is not sent, and those who were sent one are told. Once someone has voted
online, the vote stays online, because Harmony cannot know whom to refuse a paper ballot.
"""

from __future__ import annotations

import csv
import io
import random
import secrets
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.process import Phase
from harmony_matrix.errors import InvalidInput, RuleViolation
from harmony_matrix.i18n import _, _n, member_words
from harmony_matrix.services.ballots import (
    BallotOption,
    RoundView,
    count,
    round_view,
    winner_number,
)
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.debate import apply_vote_outcome, options_of
from harmony_matrix.services.lookup import meeting_ref
from harmony_matrix.services.meetings import meeting_for_organiser
from harmony_matrix.services.membership import not_suspended
from harmony_matrix.services.records import audit, direct_message
from harmony_matrix.services.voting_rights import current_round
from harmony_matrix.storage.models import (
    Attendance,
    BallotRound,
    BallotRoundStatus,
    CountedBallot,
    Meeting,
    OutboxMessage,
    Person,
    SealedBallot,
    VotingRight,
)
from harmony_matrix.voting.ballot_csv import BOM, parse_ballots
from harmony_matrix.voting.sealing import new_receipt

#: A receipt written on a paper ballot: short enough for the published file.
MAX_RECEIPT = 32


@dataclass(frozen=True)
class PaperVotePlan:
    """What a secretary needs to hold the current vote on paper and enter its ballots."""

    meeting_ref: str
    question: str
    options: tuple[BallotOption, ...]
    #: The people present and not suspended now: the most paper ballots that can be
    #: entered.
    most_ballots: int
    #: Online voting rights withdrawn by this call (an online ballot nobody had used).
    withdrawn: int

    @property
    def header(self) -> str:
        """Row 1 of the file to enter: the options' names, in order."""
        output = io.StringIO()
        csv.writer(output, lineterminator="").writerow(o.label for o in self.options)
        return output.getvalue()

    @property
    def command(self) -> str:
        """What the secretary runs to enter the ballots, until the web page exists."""
        return f"harmony ballots enter {self.meeting_ref} FILE.csv"


def awaiting_paper(round_: BallotRound) -> bool:
    """A round of a vote held on paper whose ballots are not entered yet."""
    return round_.on_paper and round_.result is None


async def prepare_paper_vote(ctx: ServiceContext, actor: str | None, ref: str) -> PaperVotePlan:
    """Hold the meeting's current vote on paper: say so, so that no online ballot can be
    opened for it, after withdrawing an online ballot that nobody has used yet (see the
    module's docstring). Asking again changes nothing and gives the same plan."""
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        now = ctx.now()
        if meeting.phase is not Phase.VOTE:
            raise RuleViolation(
                _("A vote is held on paper when the debate has ended with two or more options.")
            )
        options = tuple(BallotOption(o.number, o.text) for o in await options_of(session, meeting))
        round_ = await current_round(session, meeting, lock=True)
        withdrawn = 0
        decided = round_ is None or not awaiting_paper(round_)
        if round_ is None:
            session.add(_paper_round(meeting, options, now))
        elif awaiting_paper(round_):
            pass  # decided before: the same plan again
        elif round_.status is BallotRoundStatus.OPEN:
            withdrawn = await _withdraw_online(session, ctx, meeting, round_)
            round_.on_paper = True
            round_.status = BallotRoundStatus.CLOSED
            round_.options = [{"number": o.number, "text": o.text} for o in options]
            round_.seal_key = None
            round_.cleaned_at = now
        else:
            raise RuleViolation(
                _("The ballot of this vote is closed and counted: it cannot be held again.")
            )
        if decided:
            await session.flush()
            audit(
                session,
                now,
                person,
                "ballot.on_paper",
                meeting_ref(meeting.id),
                round=meeting.vote_round,
                withdrawn=withdrawn,
            )
        plan = PaperVotePlan(
            meeting_ref=meeting_ref(meeting.id),
            question=meeting.question,
            options=options,
            most_ballots=await _present(session, meeting, now),
            withdrawn=withdrawn,
        )
    # The withdrawn round's key file is not destroyed here: inside the bot's unit of work
    # this is not committed yet, and a rollback would leave an open round without its
    # key. Nothing was sealed to it, so it guards nothing; the next clean-up sweeps it
    # (ballot_cleanup.py keeps only the keys of open rounds).
    return plan


def _paper_round(meeting: Meeting, options: tuple[BallotOption, ...], now: datetime) -> BallotRound:
    """The vote's round, held on paper, waiting for its ballots: closed to links (nobody
    gets one; ``open_ballot`` refuses a vote that has a round) and without a result."""
    return BallotRound(
        meeting_id=meeting.id,
        number=meeting.vote_round,
        options=[{"number": o.number, "text": o.text} for o in options],
        status=BallotRoundStatus.CLOSED,
        opened_at=now,
        closes_at=now,
        closed_at=None,
        result=None,
        seal_key=None,
        # Nothing is ever sealed, so there is nothing to scrub.
        cleaned_at=now,
        on_paper=True,
    )


async def _withdraw_online(
    session: AsyncSession, ctx: ServiceContext, meeting: Meeting, round_: BallotRound
) -> int:
    """Withdraw the online rights of an open round nobody has voted in; their number.

    The round is locked: a ballot being cast waits (it holds the round shared) and is
    seen here, or comes after and finds the round closed.
    """
    cast = (
        await session.scalar(
            select(func.count()).select_from(SealedBallot).where(SealedBallot.round_id == round_.id)
        )
        or 0
    )
    if cast:
        raise RuleViolation(
            _n(
                "%(count)s person has already voted online, so this vote stays online: "
                "Harmony does not know who voted, so it cannot keep them from voting again "
                "on paper. Close the ballot when it ends.",
                "%(count)s people have already voted online, so this vote stays online: "
                "Harmony does not know who voted, so it cannot keep them from voting again "
                "on paper. Close the ballot when it ends.",
                cast,
            )
        )
    rights = list(
        await session.execute(
            select(VotingRight.id, Person)
            .join(Person, Person.id == VotingRight.person_id)
            .where(VotingRight.round_id == round_.id)
            .order_by(Person.id)
        )
    )
    right_ids = [right_id for right_id, _person in rights]
    messages = {
        message.voting_right_id: message
        for message in await session.scalars(
            select(OutboxMessage).where(OutboxMessage.voting_right_id.in_(right_ids))
        )
    }
    now = ctx.now()
    for right_id, voter in rights:
        message = messages.get(right_id)
        if message is not None and (
            message.sent_at is not None or message.first_attempt_at is not None
        ):
            await direct_message(
                session,
                now,
                voter,
                message=_(
                    "The online ballot of %(ref)s is withdrawn: the vote is held on paper "
                    "at the meeting instead. The voting link I sent you no longer works. "
                    "Ask the secretary for a paper ballot.",
                    ref=meeting_ref(meeting.id),
                ),
                dedupe_key=f"ballot-withdrawn:{round_.id}:{voter.id}",
            )
    # A link not sent yet is not sent at all; a sent one keeps its record, without the
    # right it pointed to (so it no longer works).
    await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.voting_right_id.in_(right_ids), OutboxMessage.sent_at.is_(None)
        )
    )
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.voting_right_id.in_(right_ids))
        .values(voting_right_id=None)
    )
    await session.execute(delete(VotingRight).where(VotingRight.round_id == round_.id))
    return len(rights)


async def _present(session: AsyncSession, meeting: Meeting, now: datetime) -> int:
    """The people present and not suspended: those entitled to a paper ballot."""
    return (
        await session.scalar(
            select(func.count())
            .select_from(Attendance)
            .join(Person, Person.id == Attendance.person_id)
            .where(Attendance.meeting_id == meeting.id, not_suspended(now))
        )
        or 0
    )


@dataclass(frozen=True)
class PaperCheck:
    """Paper ballots as they would be counted: how many, and each option's total."""

    meeting_ref: str
    options: tuple[BallotOption, ...]
    ballots: int
    #: The sum of each option's scores, in the options' order.
    totals: tuple[int, ...]
    most_ballots: int


async def check_paper_vote(
    ctx: ServiceContext, actor: str | None, ref: str, data: bytes
) -> PaperCheck:
    """What :func:`enter_paper_vote` would count, refused for the same reasons, without
    counting or storing anything (the page shows it before the secretary confirms)."""
    _receipts, names, scores = _read(data)
    async with ctx.transaction() as session:
        meeting, _person = await meeting_for_organiser(session, ctx, actor, ref)
        _round, options, rows = await _ballot_rows(session, ctx, meeting, names, scores)
        return PaperCheck(
            meeting_ref=meeting_ref(meeting.id),
            options=options,
            ballots=len(rows),
            totals=tuple(sum(row[i] for row in rows) for i in range(len(options))),
            most_ballots=await _present(session, meeting, ctx.now()),
        )


def _read(data: bytes) -> tuple[list[str] | None, list[str], npt.NDArray[np.int8]]:
    receipts, ballot_data = _split_receipts(data)
    names, scores = parse_ballots(ballot_data)
    if receipts is not None and len(receipts) != len(scores):
        raise InvalidInput(
            _("Every paper ballot needs its receipt, or leave out the receipt column.")
        )
    return receipts, names, scores


async def _ballot_rows(
    session: AsyncSession,
    ctx: ServiceContext,
    meeting: Meeting,
    names: list[str],
    scores: npt.NDArray[np.int8],
) -> tuple[BallotRound | None, tuple[BallotOption, ...], list[list[int]]]:
    """The vote's round (locked) and the ballots' scores in the options' order, if paper
    ballots may be entered for this vote now."""
    if meeting.phase is not Phase.VOTE:
        raise RuleViolation(
            _("Paper ballots are entered when the debate has ended with two or more options.")
        )
    round_ = await current_round(session, meeting, lock=True)
    if round_ is not None and not awaiting_paper(round_):
        raise RuleViolation(
            _(
                "This vote is in Harmony's ballot box: close the ballot to count it. A "
                "vote is held online or on paper, never both, because Harmony does not "
                "know who voted online."
            )
        )
    options = tuple(BallotOption(o.number, o.text) for o in await options_of(session, meeting))
    order = _columns(names, options)
    rows = [[int(row[order[i]]) for i in range(len(options))] for row in scores]
    present = await _present(session, meeting, ctx.now())
    if len(rows) > present:
        raise InvalidInput(
            _n(
                "There is %(count)s paper ballot, but the number of people present who "
                "may vote is %(present)s.",
                "There are %(count)s paper ballots, but the number of people present who "
                "may vote is %(present)s.",
                len(rows),
                present=present,
            )
        )
    return round_, options, rows


async def enter_paper_vote(
    ctx: ServiceContext, actor: str | None, ref: str, data: bytes
) -> RoundView:
    """Count the paper ballots of the meeting's current vote and record the outcome:
    the STAR winner is consensus; no clear winner sends the meeting back to debate."""
    receipts, names, scores = _read(data)
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        now = ctx.now()
        round_, options, rows = await _ballot_rows(session, ctx, meeting, names, scores)
        result = count(options, rows)
        if round_ is None:
            round_ = _paper_round(meeting, options, now)
            session.add(round_)
        round_.options = [{"number": o.number, "text": o.text} for o in options]
        round_.closes_at = now
        round_.closed_at = now
        round_.result = result.to_json()
        await session.flush()
        ballots = list(zip(receipts or [new_receipt() for _row in rows], rows, strict=True))
        random.SystemRandom().shuffle(ballots)
        session.add_all(
            CountedBallot(id=secrets.token_hex(16), round_id=round_.id, receipt=r, scores=s)
            for r, s in ballots
        )
        await session.flush()
        audit(
            session,
            now,
            person,
            "ballot.paper",
            meeting_ref(meeting.id),
            round=round_.number,
            ballots=len(rows),
        )
        await apply_vote_outcome(session, ctx, meeting, person, winner_number(options, result))
        return await round_view(session, meeting, round_)


def _split_receipts(data: bytes) -> tuple[list[str] | None, bytes]:
    """A first column headed ``receipt`` (as in published ballots) holds codes written
    on the papers; the rest is the ballots. Codes must be present and distinct."""
    stripped = data.removeprefix(BOM)
    if not stripped.startswith(b"receipt,"):
        return None, data
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(_("The file is not UTF-8 text. Save it as CSV UTF-8.")) from error
    try:
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as error:  # a field over the csv module's limit, a stray NUL
        raise InvalidInput(
            _("The file is not a CSV file Harmony can read: %(reason)s.", reason=str(error))
        ) from error
    receipts = [row[0].strip() for row in rows[1:]]
    seen: set[str] = set()
    for line, receipt in enumerate(receipts, start=2):
        if not receipt or len(receipt) > MAX_RECEIPT or receipt in seen:
            raise InvalidInput(
                _(
                    "Row %(row)s: the receipt must be given, unique and at most %(limit)s "
                    "characters.",
                    row=line,
                    limit=MAX_RECEIPT,
                )
            )
        seen.add(receipt)
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\n")
    for row in rows:
        writer.writerow(row[1:])
    return receipts, output.getvalue().encode("utf-8")


def _columns(names: list[str], options: tuple[BallotOption, ...]) -> list[int]:
    """For each option in order, its column in the file. A column names an option as
    published ("2. Meet every two months") or by its text; every active option must have
    exactly one column. A bare number is not a name: the reader refuses a header of
    numbers, which is what a file whose header row was forgotten looks like."""
    by_name: dict[str, int] = {}
    for option in options:
        for name in (option.label, option.text):
            by_name.setdefault(" ".join(name.split()).casefold(), option.number)
    columns: dict[int, int] = {}
    for column, name in enumerate(names):
        number = by_name.get(" ".join(name.split()).casefold())
        if number is None:
            raise InvalidInput(
                _("Row 1: there is no option “%(name)s” in this vote.", name=member_words(name))
            )
        if number in columns:
            raise InvalidInput(_("Row 1: option %(number)s is named twice.", number=number))
        columns[number] = column
    for option in options:
        if option.number not in columns:
            raise InvalidInput(
                _("Row 1 has no column for option %(option)s.", option=member_words(option.label))
            )
    return [columns[option.number] for option in options]
