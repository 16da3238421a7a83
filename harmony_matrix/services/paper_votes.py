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
"""

from __future__ import annotations

import csv
import io
import random
import secrets

from sqlalchemy import func, select

from harmony_matrix.constitution.process import Phase
from harmony_matrix.errors import InvalidInput, RuleViolation
from harmony_matrix.i18n import _, _n
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
from harmony_matrix.services.records import audit
from harmony_matrix.services.voting_rights import current_round
from harmony_matrix.storage.models import (
    Attendance,
    BallotRound,
    BallotRoundStatus,
    CountedBallot,
    Person,
)
from harmony_matrix.voting.ballot_csv import BOM, parse_ballots
from harmony_matrix.voting.sealing import new_receipt

#: A receipt written on a paper ballot: short enough for the published file.
MAX_RECEIPT = 32


async def enter_paper_vote(
    ctx: ServiceContext, actor: str | None, ref: str, data: bytes
) -> RoundView:
    """Count the paper ballots of the meeting's current vote and record the outcome:
    the STAR winner is consensus; no clear winner sends the meeting back to debate."""
    receipts, ballot_data = _split_receipts(data)
    names, scores = parse_ballots(ballot_data)
    if receipts is not None and len(receipts) != len(scores):
        raise InvalidInput(
            _("Every paper ballot needs its receipt, or leave out the receipt column.")
        )
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        now = ctx.now()
        if meeting.phase is not Phase.VOTE:
            raise RuleViolation(
                _("Paper ballots are entered when the debate has ended with two or more options.")
            )
        if await current_round(session, meeting) is not None:
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
        present = (
            await session.scalar(
                select(func.count())
                .select_from(Attendance)
                .join(Person, Person.id == Attendance.person_id)
                .where(Attendance.meeting_id == meeting.id, not_suspended(now))
            )
            or 0
        )
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
        result = count(options, rows)
        round_ = BallotRound(
            meeting_id=meeting.id,
            number=meeting.vote_round,
            options=[{"number": o.number, "text": o.text} for o in options],
            status=BallotRoundStatus.CLOSED,
            opened_at=now,
            closes_at=now,
            closed_at=now,
            result=result.to_json(),
            seal_key=None,
            # Nothing was sealed or spent, so there is nothing to scrub.
            cleaned_at=now,
            on_paper=True,
        )
        session.add(round_)
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
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
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
            raise InvalidInput(_("Row 1: there is no option “%(name)s” in this vote.", name=name))
        if number in columns:
            raise InvalidInput(_("Row 1: option %(number)s is named twice.", number=number))
        columns[number] = column
    for option in options:
        if option.number not in columns:
            raise InvalidInput(_("Row 1 has no column for option %(option)s.", option=option.label))
    return [columns[option.number] for option in options]
