"""The secret-ballot use cases (DESIGN.md section 6): open a round, cast, show turnout,
close and count, publish the anonymised ballots. Delivering the links is in
``ballot_delivery.py``, the clean-up after a close in ``ballot_cleanup.py``.

Secrecy, concretely (docs/secret-ballot.md has the whole threat model and its tests):
- A voting right stores only ``right_hash`` of the token in the person's link, and is
  never changed when they vote.
- Casting stores ``spent_hash`` of the token (unmatchable to the right without the
  token) and the ballot, sealed to the round's key (no receipt or score in clear), in
  one transaction; ``INSERT ... ON CONFLICT DO NOTHING`` on the spent hash makes a
  second use store nothing, without an error in the database server's log.
- Nothing at casting names a person or a time: no audit event, no activity, no log.
- Closing opens the sealed ballots with the round's private key, writes them in a
  random order into ``counted_ballots``, deletes the sealed ballots and spent hashes,
  counts, then destroys the round's key and scrubs the old storage.
So the database can say how many voted, never who voted or how.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import logging
import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from harmony_matrix.constitution.eligibility import Act, check_may
from harmony_matrix.constitution.process import Phase
from harmony_matrix.errors import (
    HarmonyError,
    InvalidInput,
    NotAllowed,
    NotFound,
    RuleViolation,
)
from harmony_matrix.i18n import Message, _, _n, member_words
from harmony_matrix.services.ballot_cleanup import clean_up_after_close
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.debate import apply_vote_outcome, options_of
from harmony_matrix.services.lookup import meeting_by_ref, meeting_ref
from harmony_matrix.services.meeting_announcements import announce_ballot_open
from harmony_matrix.services.meeting_state import queue_state
from harmony_matrix.services.meetings import meeting_for_organiser
from harmony_matrix.services.membership import not_suspended, standing
from harmony_matrix.services.preparation import when
from harmony_matrix.services.records import audit
from harmony_matrix.services.visibility import meeting_is_public_clause
from harmony_matrix.services.voting_rights import current_round, grant_right
from harmony_matrix.storage.key_store import KeyFileMissing
from harmony_matrix.storage.models import (
    Attendance,
    BallotRound,
    BallotRoundStatus,
    CountedBallot,
    Meeting,
    Person,
    SealedBallot,
    SpentToken,
    VotingRight,
)
from harmony_matrix.voting.links import BallotLink, ExpiredLink, right_hash, spent_hash
from harmony_matrix.voting.sealing import RoundKeys, SealBroken, new_receipt, seal, unseal
from harmony_matrix.voting.star import StarResult, tabulate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BallotOption:
    number: int
    text: str

    @property
    def label(self) -> str:
        """The option's column name in published ballots and its name in the count."""
        return f"{self.number}. {self.text}"


@dataclass(frozen=True)
class RoundView:
    meeting_ref: str
    round_id: int
    number: int
    status: BallotRoundStatus
    options: tuple[BallotOption, ...]
    eligible: int
    #: Turnout: how many ballots, never whose.
    cast: int
    closes_at: datetime | None
    #: Only once the round is closed.
    result: Mapping[str, object] | None
    #: Closed and its clean-up verified (key destroyed, old storage rewritten).
    cleaned_up: bool = False


def _options(round_: BallotRound) -> tuple[BallotOption, ...]:
    return tuple(BallotOption(int(o["number"]), str(o["text"])) for o in round_.options)


async def round_view(session: AsyncSession, meeting: Meeting, round_: BallotRound) -> RoundView:
    eligible = await session.scalar(
        select(func.count()).select_from(VotingRight).where(VotingRight.round_id == round_.id)
    )
    ballots = SealedBallot if round_.status is BallotRoundStatus.OPEN else CountedBallot
    cast = await session.scalar(
        select(func.count()).select_from(ballots).where(ballots.round_id == round_.id)
    )
    return RoundView(
        meeting_ref=meeting_ref(meeting.id),
        round_id=round_.id,
        number=round_.number,
        status=round_.status,
        options=_options(round_),
        eligible=eligible or 0,
        cast=cast or 0,
        closes_at=round_.closes_at,
        result=round_.result if round_.status is BallotRoundStatus.CLOSED else None,
        cleaned_up=round_.cleaned_at is not None,
    )


async def open_ballot(
    ctx: ServiceContext, actor: str | None, ref: str, *, closes_at: datetime | None = None
) -> RoundView:
    """Open the secret STAR ballot of the meeting's current vote.

    Clause: "in the event of two or more options: the responsible Secretary will prepare
    ballots". Every person present and not suspended gets a right and, through the
    outbox, a direct message with their own link (minted when it is sent).

    The round's key pair is made first and its private key written to the key store
    before the round exists; if opening fails, the key file is destroyed again.
    """
    ctx.ballot_key()
    keys = RoundKeys.generate()
    store = ctx.round_keys
    await asyncio.to_thread(store.save, keys)
    try:
        view = await _open(ctx, actor, ref, closes_at, keys)
    except BaseException:
        await asyncio.to_thread(store.destroy, keys.public)
        raise
    await clean_up_after_close(ctx)  # an earlier close's clean-up, if it is still due
    return view


async def _open(
    ctx: ServiceContext, actor: str | None, ref: str, closes_at: datetime | None, keys: RoundKeys
) -> RoundView:
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        now = ctx.now()
        if meeting.phase is not Phase.VOTE:
            raise RuleViolation(
                _("A ballot opens when the debate has ended with two or more options.")
            )
        existing = await current_round(session, meeting)
        if existing is not None and existing.on_paper:
            raise RuleViolation(
                _(
                    "This vote is held on paper, so it has no online ballot. Enter its "
                    "paper ballots."
                )
            )
        if existing is not None:
            raise RuleViolation(_("The ballot for this vote has already been opened."))
        if closes_at is None:
            closes_at = now + timedelta(hours=ctx.ballot_open_hours)
        if closes_at <= now:
            raise InvalidInput(_("The ballot must close in the future."))
        options = await options_of(session, meeting)
        round_ = BallotRound(
            meeting_id=meeting.id,
            number=meeting.vote_round,
            options=[{"number": o.number, "text": o.text} for o in options],
            status=BallotRoundStatus.OPEN,
            opened_at=now,
            closes_at=closes_at,
            closed_at=None,
            result=None,
            seal_key=keys.public,
            cleaned_at=None,
        )
        session.add(round_)
        await session.flush()
        present = await session.scalars(
            select(Person)
            .join(Attendance, Attendance.person_id == Person.id)
            .where(Attendance.meeting_id == meeting.id, not_suspended(now))
            .order_by(Person.id)
        )
        for voter in present:
            await grant_right(session, ctx.now(), meeting, round_, voter)
        audit(session, now, person, "ballot.open", meeting_ref(meeting.id), round=round_.number)
        await announce_ballot_open(session, ctx, meeting, round_)
        await queue_state(session, ctx, meeting)
        return await round_view(session, meeting, round_)


@dataclass(frozen=True)
class BallotPaper:
    """What the ballot page shows: the question, the options and the closing time, and
    the voter's saved language (to speak it); nothing else about the voter."""

    meeting_ref: str
    question: str
    round_number: int
    #: In this voter's own order (see :func:`voter_order`), not the count's.
    options: tuple[BallotOption, ...]
    closes_at: datetime | None = None
    language: str | None = None
    #: The meeting has public pages (results, published ballots) to check a receipt on.
    public: bool = True


class LinkProblem(StrEnum):
    """Why a ballot link cannot be used now: each has its own page saying what to do."""

    INVALID = "invalid"
    EXPIRED = "expired"
    USED = "used"
    CLOSED = "closed"
    SUSPENDED = "suspended"


class BallotLinkError(HarmonyError):
    """A ballot link refused by one of the checks of :func:`_check_link`."""

    def __init__(
        self, message: Message, problem: LinkProblem, meeting_ref: str | None = None
    ) -> None:
        super().__init__(message)
        self.problem = problem
        #: The meeting whose ballot closed (for "the result will be at ..."), when known.
        self.meeting_ref = meeting_ref


class LinkRefused(BallotLinkError, NotAllowed):
    """Not a working link for this person: invalid, expired, or its holder suspended."""


class LinkUnusable(BallotLinkError, RuleViolation):
    """A working link that cannot vote now: already used, or its ballot closed."""


def _invalid_link() -> LinkRefused:
    return LinkRefused(
        _("This voting link is not valid. Use the link in your latest message from Harmony."),
        LinkProblem.INVALID,
    )


def _link_used() -> LinkUnusable:
    return LinkUnusable(
        _("This link has already been used to vote. Each link votes once."), LinkProblem.USED
    )


def voter_order(
    key: bytes, token: str, options: tuple[BallotOption, ...]
) -> tuple[BallotOption, ...]:
    """The options in the order one voter sees them: sorted by an HMAC of the link's
    token and the option under the secret key. Each voter gets their own order (no option
    gains from always coming first), the same on every visit, and nothing is stored."""

    def rank(option: BallotOption) -> bytes:
        message = f"option-order:{token}:{option.number}".encode()
        return hmac.new(key, message, hashlib.sha256).digest()

    return tuple(sorted(options, key=rank))


async def ballot_paper(ctx: ServiceContext, signed_link: str) -> BallotPaper:
    """Check a link (valid, unexpired, its round open, its right unused) for the page."""
    async with ctx.transaction() as session:
        checked = await _check_link(session, ctx, signed_link)
        return _paper(ctx, checked)


@dataclass(frozen=True)
class _CheckedLink:
    link: BallotLink
    round_: BallotRound
    meeting: Meeting
    person: Person
    public: bool


def _paper(ctx: ServiceContext, checked: _CheckedLink) -> BallotPaper:
    return BallotPaper(
        meeting_ref(checked.meeting.id),
        checked.meeting.question,
        checked.round_.number,
        voter_order(ctx.ballot_key(), checked.link.token, _options(checked.round_)),
        closes_at=checked.round_.closes_at,
        language=checked.person.language,
        public=checked.public,
    )


async def _check_link(
    session: AsyncSession, ctx: ServiceContext, signed_link: str, *, check_spent: bool = True
) -> _CheckedLink:
    """The link's round, meeting and holder, if it may vote now. ``check_spent=False``
    leaves "already used" to the caller's insert of the spent token (casting), which
    finds it anyway and spares a read."""
    try:
        link = BallotLink.verify(signed_link, ctx.ballot_key(), ctx.now())
    except ExpiredLink as error:
        expired = await session.get(BallotRound, error.round_id)
        raise LinkRefused(
            error.message,
            LinkProblem.EXPIRED,
            meeting_ref(expired.meeting_id) if expired is not None else None,
        ) from error
    except NotAllowed as error:
        raise _invalid_link() from error
    # One read for the right, its round, meeting and holder (casting is the hot path).
    # A shared lock on the round: closing (which takes it exclusively) waits for
    # ballots being cast, and a ballot cast after closing sees the round closed.
    found = (
        await session.execute(
            select(BallotRound, Meeting, Person, meeting_is_public_clause())
            .select_from(VotingRight)
            .join(BallotRound, BallotRound.id == VotingRight.round_id)
            .join(Meeting, Meeting.id == BallotRound.meeting_id)
            .join(Person, Person.id == VotingRight.person_id)
            .where(
                VotingRight.token_hash == right_hash(link.token),
                BallotRound.id == link.round_id,
            )
            .with_for_update(read=True, of=BallotRound)
            # The meeting's assemblies and agreements are loaded eagerly elsewhere; a
            # ballot needs neither (two queries fewer on every cast).
            .options(raiseload(Meeting.assemblies), raiseload(Meeting.agreements))
        )
    ).first()
    if found is None:
        raise _invalid_link()
    round_, meeting, person, public = found
    if (
        round_.status is not BallotRoundStatus.OPEN
        or meeting.phase is not Phase.VOTE
        or (round_.closes_at is not None and ctx.now() >= round_.closes_at)
    ):
        raise LinkUnusable(_("This ballot is closed."), LinkProblem.CLOSED, meeting_ref(meeting.id))
    if check_spent and await session.get(SpentToken, spent_hash(link.token)) is not None:
        raise _link_used()
    try:
        check_may(standing(person, ctx.now()), Act.VOTE)
    except NotAllowed as error:
        raise LinkRefused(error.message, LinkProblem.SUSPENDED) from error
    return _CheckedLink(link, round_, meeting, person, bool(public))


@dataclass(frozen=True)
class Cast:
    """What :func:`cast_from_answers` did: the ballot paper, and the receipt, or None when
    the answers were refused (then nothing was stored)."""

    paper: BallotPaper
    receipt: str | None


async def cast_from_answers(
    ctx: ServiceContext,
    signed_link: str,
    read: Callable[[BallotPaper], Mapping[int, int] | None],
) -> Cast:
    """Cast a secret ballot in one transaction: check the link, let ``read`` turn the
    voter's answers into scores for this paper (every option, 0-5), or refuse them with
    None, and store the sealed ballot. Stores nothing unless everything is right."""
    key = ctx.ballot_key()
    async with ctx.transaction() as session:
        checked = await _check_link(session, ctx, signed_link, check_spent=False)
        paper = _paper(ctx, checked)
        scores = read(paper)
        if scores is None:
            return Cast(paper, None)
        round_ = checked.round_
        row = _scores_in_order(_options(round_), scores)
        if round_.seal_key is None:
            raise RuleViolation(_("This ballot was opened by an older version of Harmony."))
        spent = await session.execute(
            _insert_ignoring_conflict(session).values(
                token_hash=spent_hash(checked.link.token), round_id=round_.id
            )
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            # Spent already (earlier, or by a request racing this one): store nothing.
            raise _link_used()
        receipt = new_receipt()
        # A plain INSERT, not an ORM object: nothing for the commit to flush.
        await session.execute(
            insert(SealedBallot).values(
                id=secrets.token_hex(16),
                round_id=round_.id,
                sealed=seal(round_.seal_key, key, round_.id, receipt, row),
            )
        )
        return Cast(paper, receipt)


async def cast_ballot(ctx: ServiceContext, signed_link: str, scores: Mapping[int, int]) -> str:
    """Cast a secret ballot; returns the receipt code. ``scores`` maps option numbers to
    0-5 and must score every option. Stores nothing unless everything is right."""
    cast = await cast_from_answers(ctx, signed_link, lambda _paper: scores)
    assert cast.receipt is not None
    return cast.receipt


def _insert_ignoring_conflict(session: AsyncSession) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` into spent_tokens: a second use of a link
    is refused by the row count, not by a unique-key error that the database server
    would write to its log with the key and the time."""
    dialect = session.get_bind().dialect.name
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(SpentToken)
    return statement.on_conflict_do_nothing(index_elements=["token_hash"])


def _scores_in_order(options: tuple[BallotOption, ...], scores: Mapping[int, int]) -> list[int]:
    numbers = {o.number for o in options}
    unknown = sorted(set(scores) - numbers)
    if unknown:
        raise InvalidInput(_("The ballot has no option %(number)s.", number=unknown[0]))
    row: list[int] = []
    for option in options:
        score = scores.get(option.number)
        if score is None:
            raise InvalidInput(
                _("Select a score for %(option)s.", option=member_words(option.label))
            )
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 5:
            raise InvalidInput(
                _("Select a score from 0 to 5 for %(option)s.", option=member_words(option.label))
            )
        row.append(score)
    return row


async def round_status(ctx: ServiceContext, ref: str) -> RoundView:
    """Turnout while open (how many, never who chose what); the result once closed."""
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, ref)
        round_ = await current_round(session, meeting)
        if round_ is None:
            raise NotFound(_("%(ref)s has no ballot in this vote.", ref=meeting_ref(meeting.id)))
        return await round_view(session, meeting, round_)


async def close_ballot(ctx: ServiceContext, actor: str | None, ref: str) -> RoundView:
    """Close the ballot, count it by STAR and record the outcome.

    Clauses: "the winner of the vote is Consensus"; "Should there be no clear winner, the
    debate and vote phases shall be repeated". After the count is committed, the round's
    key is destroyed and the old storage scrubbed; if the scrub cannot finish yet, the
    view says so (``cleaned_up``) and it is retried (services/ballot_cleanup.py).
    """
    key = ctx.ballot_key()
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        round_ = await current_round(session, meeting, lock=True)
        if round_ is None or round_.status is not BallotRoundStatus.OPEN:
            raise RuleViolation(
                _("There is no open ballot in %(ref)s.", ref=meeting_ref(meeting.id))
            )
        now = ctx.now()
        view = await round_view(session, meeting, round_)
        if round_.closes_at is not None and now < round_.closes_at and view.cast < view.eligible:
            # The announced closing time is a promise to every voter.
            raise RuleViolation(
                _(
                    "The ballot closes at %(when)s; %(missing)s of %(eligible)s have not "
                    "voted yet. It can close earlier only when everyone has voted.",
                    when=when(round_.closes_at, ctx.party.timezone),
                    missing=view.eligible - view.cast,
                    eligible=view.eligible,
                )
            )
        options = _options(round_)
        opened = await _open_sealed_ballots(session, ctx, key, round_, len(options))
        await _write_counted_ballots(session, round_, opened)
        result = count(options, [scores for _receipt, scores in opened])
        round_.status = BallotRoundStatus.CLOSED
        round_.closed_at = now
        round_.result = result.to_json()
        winner = winner_number(options, result)
        audit(
            session,
            now,
            person,
            "ballot.close",
            meeting_ref(meeting.id),
            round=round_.number,
            ballots=len(opened),
        )
        await apply_vote_outcome(session, ctx, meeting, person, winner)
        round_id = round_.id
    await clean_up_after_close(ctx)
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, meeting_ref(meeting.id))
        closed = await session.get(BallotRound, round_id)
        assert closed is not None
        return await round_view(session, meeting, closed)


async def _open_sealed_ballots(
    session: AsyncSession, ctx: ServiceContext, key: bytes, round_: BallotRound, count: int
) -> list[tuple[str, list[int]]]:
    assert round_.seal_key is not None
    try:
        keys = await asyncio.to_thread(ctx.round_keys.load, round_.seal_key)
    except KeyFileMissing as error:
        raise RuleViolation(
            _(
                "The key of this ballot is not on this server, so its ballots cannot be "
                "counted here. Close it where it was opened ([security] ballot_keys_path)."
            )
        ) from error
    except SealBroken as error:
        raise RuleViolation(
            _("The key of this ballot does not open with this server's secret key.")
        ) from error
    sealed = await session.scalars(select(SealedBallot).where(SealedBallot.round_id == round_.id))
    opened, broken = [], 0
    for ballot in sealed:
        try:
            opened.append(unseal(keys, key, round_.id, ballot.sealed, count))
        except SealBroken:
            broken += 1
    if broken:
        # Someone altered the stored ballots: counting the rest would hide it.
        log.error("ballot round %s: %s sealed ballots do not open", round_.id, broken)
        raise RuleViolation(
            _n(
                "%(count)s stored ballot has been altered and cannot be read, so the "
                "ballot is not counted. Tell the party's data protection officer.",
                "%(count)s stored ballots have been altered and cannot be read, so the "
                "ballot is not counted. Tell the party's data protection officer.",
                broken,
            )
        )
    return opened


async def _write_counted_ballots(
    session: AsyncSession, round_: BallotRound, opened: list[tuple[str, list[int]]]
) -> None:
    """Write the opened ballots into fresh storage in a random order, and delete the
    sealed ballots and the spent hashes, so that no row, position or row version left
    reflects the order of casting."""
    shuffled = list(opened)
    random.SystemRandom().shuffle(shuffled)
    await session.execute(delete(SealedBallot).where(SealedBallot.round_id == round_.id))
    await session.execute(delete(SpentToken).where(SpentToken.round_id == round_.id))
    session.add_all(
        CountedBallot(id=secrets.token_hex(16), round_id=round_.id, receipt=r, scores=s)
        for r, s in shuffled
    )
    await session.flush()


def count(options: tuple[BallotOption, ...], rows: list[list[int]]) -> StarResult:
    scores = np.array(rows, dtype=np.int8).reshape(len(rows), len(options))
    return tabulate(scores, [o.label for o in options])


def winner_number(options: tuple[BallotOption, ...], result: StarResult) -> int | None:
    if result.winner is None:
        return None
    return next(o.number for o in options if o.label == result.winner)


async def published_ballots(ctx: ServiceContext, ref: str, round_number: int | None = None) -> str:
    """The anonymised ballots of a closed round as CSV: a ``receipt`` column, then one
    column per option; sorted by receipt (random), so the order says nothing.
    ``harmony tally`` recounts it to the same result."""
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, ref)
        number = meeting.vote_round if round_number is None else round_number
        round_ = await session.scalar(
            select(BallotRound).where(
                BallotRound.meeting_id == meeting.id, BallotRound.number == number
            )
        )
        if round_ is None:
            raise NotFound(_("%(ref)s has no ballot in this vote.", ref=meeting_ref(meeting.id)))
        if round_.status is not BallotRoundStatus.CLOSED:
            raise RuleViolation(_("Ballots are published when the ballot closes."))
        ballots = await session.scalars(
            select(CountedBallot)
            .where(CountedBallot.round_id == round_.id)
            .order_by(CountedBallot.receipt)
        )
        output = io.StringIO()
        writer = csv.writer(output, lineterminator="\n")
        writer.writerow(["receipt", *(o.label for o in _options(round_))])
        for ballot in ballots:
            writer.writerow([ballot.receipt, *ballot.scores])
        return output.getvalue()
