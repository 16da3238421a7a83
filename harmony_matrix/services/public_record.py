"""What anyone may read about the party: its public assemblies, their meetings and
decisions, the results of closed ballots, petitions and the record of consensus.

Read-only use cases for the web companion's public pages, one transaction each.

Private assemblies exist for nobody outside: an assembly page, a meeting page (when
every assembly of the meeting is private), its calendar file, its results and its
ballots raise exactly the :class:`NotFound` a missing slug or ID raises, so the pages
cannot be told apart. A meeting without assemblies (a Party Thing) is the whole party's
and public.

Nothing here names who signed, who suggested or who voted: petitions show their count
of signatures, ballots their turnout and the anonymised published ballots.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.process import FINISHED, Phase, PreparationStep, phase_state
from harmony_matrix.constitution.scheduling import MeetingKind, kind_name
from harmony_matrix.errors import NotFound
from harmony_matrix.i18n import Message, _, _n
from harmony_matrix.services import ballots, petitions
from harmony_matrix.services.calendar import calendar_file_name, meeting_calendar
from harmony_matrix.services.consensus import (
    ChainCheck,
    ConsensusEntry,
    check_chain,
    list_consensus,
)
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import (
    meeting_by_ref,
    meeting_ref,
    parse_ref,
    petition_ref,
)

# The same words the room is told when a ballot is counted (one wording, one catalog).
from harmony_matrix.services.meeting_announcements import _steps as result_steps
from harmony_matrix.services.visibility import meeting_is_public
from harmony_matrix.storage.models import (
    Assembly,
    BallotRound,
    BallotRoundStatus,
    Meeting,
    MeetingAssembly,
    Option,
    OptionStatus,
    OptionSuggestion,
    Petition,
    PetitionStatus,
    PreparationRecord,
    SealedBallot,
    Suggestion,
    Visibility,
    VotingRight,
)

# --- Labels --------------------------------------------------------------------------


def phase_label(phase: Phase) -> Message:
    """A meeting's phase in one or two words, as a tag shows it."""
    return {
        Phase.PLANNING: _("Planning"),
        Phase.DISCUSSION: _("Discussion"),
        Phase.DEBATE: _("Debate"),
        Phase.VOTE: _("Vote"),
        Phase.CONSENSUS: _("Consensus reached"),
        Phase.CANCELLED: _("Cancelled"),
    }[phase]


def petition_status_label(status: PetitionStatus) -> Message:
    return {
        PetitionStatus.OPEN: _("Open for signatures"),
        PetitionStatus.REACHED: _("Threshold reached"),
        PetitionStatus.CLOSED: _("Closed"),
    }[status]


# --- Assemblies ----------------------------------------------------------------------


@dataclass(frozen=True)
class AssemblyLink:
    slug: str
    name: str
    reference: str


@dataclass(frozen=True)
class MeetingListing:
    ref: str
    kind: MeetingKind
    question: str
    phase: Phase
    starts_at: datetime | None


@dataclass(frozen=True)
class AssemblyPage:
    slug: str
    name: str
    subtitle: str
    about: str
    purpose: str
    composition: str
    reference: str
    is_open: bool
    parent: AssemblyLink | None
    members: tuple[AssemblyLink, ...]
    #: Not finished yet, soonest first (undated ones last).
    upcoming: tuple[MeetingListing, ...]
    #: Reached consensus or cancelled, latest first.
    past: tuple[MeetingListing, ...]
    #: Its entries in the record of consensus, newest first.
    decisions: tuple[ConsensusEntry, ...] = ()

    @property
    def about_paragraphs(self) -> list[str]:
        """The text as the seed's page shows it: one paragraph per line."""
        return [line.strip() for line in self.about.splitlines() if line.strip()]


def _link(assembly: Assembly) -> AssemblyLink:
    return AssemblyLink(assembly.slug, assembly.name, assembly.reference)


async def public_assemblies(ctx: ServiceContext) -> list[AssemblyLink]:
    """Every public assembly, by name; private ones are never listed."""
    async with ctx.transaction() as session:
        rows = await session.scalars(
            select(Assembly)
            .where(Assembly.visibility == Visibility.PUBLIC)
            .order_by(Assembly.name, Assembly.id)
        )
        return [_link(row) for row in rows]


async def _public_assembly(session: AsyncSession, slug: str) -> Assembly:
    """The public assembly a URL names (its slug, else reference, else name, any case);
    a private one is "not found", word for word. Only public assemblies are searched,
    so a private one that shares a name cannot change what a public address shows."""
    typed = slug.strip().lower()
    for column in (Assembly.slug, Assembly.reference, Assembly.name):
        found = list(
            await session.scalars(
                select(Assembly).where(
                    func.lower(column) == typed, Assembly.visibility == Visibility.PUBLIC
                )
            )
        )
        if len(found) == 1:
            return found[0]
    raise NotFound(_("There is no assembly called “%(slug)s”.", slug=slug))


async def assembly_page(ctx: ServiceContext, slug: str) -> AssemblyPage:
    async with ctx.transaction() as session:
        assembly = await _public_assembly(session, slug)
        parent = await session.get(Assembly, assembly.parent_id) if assembly.parent_id else None
        members = await session.scalars(
            select(Assembly)
            .where(Assembly.parent_id == assembly.id, Assembly.visibility == Visibility.PUBLIC)
            .order_by(Assembly.name)
        )
        meetings = list(
            await session.scalars(
                select(Meeting)
                .join(MeetingAssembly, MeetingAssembly.meeting_id == Meeting.id)
                .where(MeetingAssembly.assembly_id == assembly.id)
            )
        )
        page = AssemblyPage(
            slug=assembly.slug,
            name=assembly.name,
            subtitle=assembly.subtitle,
            about=assembly.about,
            purpose=assembly.purpose,
            composition=assembly.composition,
            reference=assembly.reference,
            is_open=assembly.is_open,
            parent=(
                _link(parent)
                if parent is not None and parent.visibility is Visibility.PUBLIC
                else None
            ),
            members=tuple(_link(member) for member in members),
            upcoming=_upcoming(meetings),
            past=_past(meetings),
        )
    # The record as `!consensus SLUG` reads it: the entries recorded for this assembly.
    decisions = await list_consensus(ctx, page.slug)
    return dataclasses.replace(page, decisions=tuple(reversed(decisions)))


def _listing(meeting: Meeting) -> MeetingListing:
    return MeetingListing(
        meeting_ref(meeting.id), meeting.kind, meeting.question, meeting.phase, meeting.starts_at
    )


def _upcoming(meetings: Sequence[Meeting]) -> tuple[MeetingListing, ...]:
    waiting = [m for m in meetings if m.phase not in FINISHED]
    waiting.sort(key=lambda m: (m.starts_at is None, m.starts_at or m.created_at, m.id))
    return tuple(_listing(m) for m in waiting)


def _past(meetings: Sequence[Meeting]) -> tuple[MeetingListing, ...]:
    done = [m for m in meetings if m.phase in FINISHED]
    done.sort(key=lambda m: (m.starts_at or m.created_at, m.id), reverse=True)
    return tuple(_listing(m) for m in done)


# --- Meetings ------------------------------------------------------------------------


_is_public = meeting_is_public


async def _public_meeting(session: AsyncSession, ref: str) -> Meeting:
    meeting = await meeting_by_ref(session, ref)
    if not _is_public(meeting):
        # The words lookup.meeting_by_ref uses for a missing meeting.
        raise NotFound(_("There is no meeting %(ref)s.", ref=ref.upper()))
    return meeting


@dataclass(frozen=True)
class PreparationNote:
    done_at: datetime
    note: str


@dataclass(frozen=True)
class SuggestionView:
    number: int
    text: str


@dataclass(frozen=True)
class OptionListing:
    number: int
    text: str
    status: OptionStatus
    #: The option it was merged into (its number), for a merged option.
    merged_into: int | None
    #: The numbers of the suggestions it collates.
    suggestions: tuple[int, ...] = ()


@dataclass(frozen=True)
class MeetingPage:
    ref: str
    kind: MeetingKind
    question: str
    phase: Phase
    #: Its public assemblies (a Thing's private ones are not named).
    assemblies: tuple[AssemblyLink, ...]
    starts_at: datetime | None
    place: str
    online_url: str
    accessibility: str
    route_help: str
    #: Why the date is beyond the constitution's limit, when it is.
    schedule_explanation: str
    facts: tuple[PreparationNote, ...]
    materials: tuple[PreparationNote, ...]
    suggestions: tuple[SuggestionView, ...]
    options: tuple[OptionListing, ...]
    #: A ballot round exists: the results page has something to show.
    has_ballot: bool
    calendar_file: str

    @property
    def kind_label(self) -> Message:
        return kind_name(self.kind)

    @property
    def phase_sentence(self) -> Message:
        return phase_state(self.phase)

    @property
    def has_calendar(self) -> bool:
        return self.starts_at is not None

    @property
    def online_href(self) -> str | None:
        """The online link as a link only when it is a web address: a member typed it,
        and a ``javascript:`` address must never become one."""
        url = self.online_url.strip()
        if url.lower().startswith(("https://", "http://")) and not any(c.isspace() for c in url):
            return url
        return None


async def meeting_page(ctx: ServiceContext, ref: str) -> MeetingPage:
    async with ctx.transaction() as session:
        meeting = await _public_meeting(session, ref)
        notes = list(
            await session.scalars(
                select(PreparationRecord)
                .where(
                    PreparationRecord.meeting_id == meeting.id,
                    PreparationRecord.step.in_((PreparationStep.FACTS, PreparationStep.MATERIALS)),
                )
                .order_by(PreparationRecord.done_at, PreparationRecord.id)
            )
        )
        suggestions = await session.scalars(
            select(Suggestion)
            .where(Suggestion.meeting_id == meeting.id)
            .order_by(Suggestion.number)
        )
        options = list(
            await session.scalars(
                select(Option).where(Option.meeting_id == meeting.id).order_by(Option.number)
            )
        )
        collated = await _collated(session, [option.id for option in options])
        number_of = {option.id: option.number for option in options}
        rounds = await session.scalar(
            select(func.count())
            .select_from(BallotRound)
            .where(BallotRound.meeting_id == meeting.id)
        )
        return MeetingPage(
            ref=meeting_ref(meeting.id),
            kind=meeting.kind,
            question=meeting.question,
            phase=meeting.phase,
            assemblies=tuple(
                _link(a) for a in meeting.assemblies if a.visibility is Visibility.PUBLIC
            ),
            starts_at=meeting.starts_at,
            place=meeting.place,
            online_url=meeting.online_url,
            accessibility=meeting.accessibility,
            route_help=meeting.route_help,
            schedule_explanation=meeting.schedule_explanation,
            facts=_notes(notes, PreparationStep.FACTS),
            materials=_notes(notes, PreparationStep.MATERIALS),
            suggestions=tuple(SuggestionView(s.number, s.text) for s in suggestions),
            options=tuple(
                OptionListing(
                    option.number,
                    option.text,
                    option.status,
                    number_of.get(option.merged_into_id) if option.merged_into_id else None,
                    collated.get(option.id, ()),
                )
                for option in options
            ),
            has_ballot=bool(rounds),
            calendar_file=calendar_file_name(meeting),
        )


def _notes(
    records: Sequence[PreparationRecord], step: PreparationStep
) -> tuple[PreparationNote, ...]:
    return tuple(PreparationNote(r.done_at, r.note) for r in records if r.step is step and r.note)


async def _collated(session: AsyncSession, option_ids: list[int]) -> dict[int, tuple[int, ...]]:
    """The suggestion numbers each option collates."""
    if not option_ids:
        return {}
    rows = await session.execute(
        select(OptionSuggestion.option_id, Suggestion.number)
        .join(Suggestion, Suggestion.id == OptionSuggestion.suggestion_id)
        .where(OptionSuggestion.option_id.in_(option_ids))
        .order_by(Suggestion.number)
    )
    found: dict[int, tuple[int, ...]] = {}
    for option_id, number in rows:
        found[option_id] = (*found.get(option_id, ()), number)
    return found


@dataclass(frozen=True)
class CalendarFile:
    name: str
    content: bytes


async def meeting_calendar_file(ctx: ServiceContext, ref: str, language: str) -> CalendarFile:
    """The meeting's .ics (services/calendar.py), its texts in ``language``."""
    async with ctx.transaction() as session:
        meeting = await _public_meeting(session, ref)
        if meeting.starts_at is None:
            raise NotFound(
                _(
                    "%(ref)s has no date yet, so there is nothing to add to a calendar.",
                    ref=meeting_ref(meeting.id),
                )
            )
        return CalendarFile(
            calendar_file_name(meeting), meeting_calendar(meeting, ctx, language=language)
        )


# --- Results -------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    label: str
    value: int


@dataclass(frozen=True)
class RoundResult:
    number: int
    is_open: bool
    on_paper: bool
    #: Ballots cast (counted, once closed) and the rights to cast one.
    cast: int
    eligible: int
    closes_at: datetime | None
    closed_at: datetime | None
    #: Counted: a closed round with its result (a paper vote waits for its ballots).
    counted: bool = False
    totals: tuple[Score, ...] = ()
    #: The two finalists and the ballots preferring each, when there was a runoff.
    runoff: tuple[Score, ...] = ()
    runoff_equal: int = 0
    winner: str | None = None
    steps: tuple[Message, ...] = ()

    @property
    def turnout(self) -> Message:
        if self.on_paper:
            return _n(
                "%(count)s paper ballot was counted.",
                "%(count)s paper ballots were counted.",
                self.cast,
            )
        return _n(
            "%(cast)s of %(count)s person voted.",
            "%(cast)s of %(count)s people voted.",
            self.eligible,
            cast=self.cast,
        )

    @property
    def turnout_share(self) -> float | None:
        """Ballots cast of rights, or None when there were no rights (a paper vote)."""
        if self.on_paper or not self.eligible:
            return None
        return self.cast / self.eligible

    @property
    def highest_total(self) -> int:
        return max((score.value for score in self.totals), default=0)


@dataclass(frozen=True)
class ResultsPage:
    ref: str
    kind: MeetingKind
    question: str
    phase: Phase
    #: Newest first.
    rounds: tuple[RoundResult, ...]

    @property
    def has_published_ballots(self) -> bool:
        return any(r.counted for r in self.rounds)


async def results_page(ctx: ServiceContext, ref: str) -> ResultsPage:
    async with ctx.transaction() as session:
        meeting = await _public_meeting(session, ref)
        rounds = list(
            await session.scalars(
                select(BallotRound)
                .where(BallotRound.meeting_id == meeting.id)
                .order_by(BallotRound.number.desc())
            )
        )
        results = tuple([await _round_result(session, round_) for round_ in rounds])
        return ResultsPage(
            meeting_ref(meeting.id), meeting.kind, meeting.question, meeting.phase, results
        )


async def _round_result(session: AsyncSession, round_: BallotRound) -> RoundResult:
    eligible = await session.scalar(
        select(func.count()).select_from(VotingRight).where(VotingRight.round_id == round_.id)
    )
    is_open = round_.status is BallotRoundStatus.OPEN
    common: dict[str, Any] = {
        "number": round_.number,
        "is_open": is_open,
        "on_paper": round_.on_paper,
        "eligible": eligible or 0,
        "closes_at": round_.closes_at,
        "closed_at": round_.closed_at,
    }
    if is_open:
        # Turnout only: how many sealed ballots, never what is in them.
        cast = await session.scalar(
            select(func.count()).select_from(SealedBallot).where(SealedBallot.round_id == round_.id)
        )
        return RoundResult(cast=cast or 0, **common)
    result: Mapping[str, Any] | None = round_.result
    if result is None:  # a paper vote whose ballots are not entered yet
        return RoundResult(cast=0, **common)
    labels = [str(label) for label in result.get("options", [])]
    totals: Mapping[str, Any] = result.get("totals", {})
    runoff: Mapping[str, Any] | None = result.get("runoff")
    return RoundResult(
        cast=int(result.get("ballots", 0)),
        counted=True,
        totals=tuple(Score(label, int(totals.get(label, 0))) for label in labels),
        runoff=tuple(Score(str(label), int(runoff[label])) for label in result.get("finalists", []))
        if runoff
        else (),
        runoff_equal=int(result.get("runoff_equal") or 0),
        winner=result.get("winner"),
        steps=tuple(result_steps(result.get("steps", []))),
        **common,
    )


@dataclass(frozen=True)
class PublishedBallots:
    name: str
    csv: str


async def public_ballots(
    ctx: ServiceContext, ref: str, round_number: int | None = None
) -> PublishedBallots:
    """The anonymised ballots of a counted round (the latest, unless one is asked for),
    as ``ballots.published_ballots`` writes them; "not found" while none is counted."""
    async with ctx.transaction() as session:
        meeting = await _public_meeting(session, ref)
        counted = list(
            await session.scalars(
                select(BallotRound.number)
                .where(
                    BallotRound.meeting_id == meeting.id,
                    BallotRound.status == BallotRoundStatus.CLOSED,
                    BallotRound.result.is_not(None),
                )
                .order_by(BallotRound.number)
            )
        )
        the_ref = meeting_ref(meeting.id)
    number = counted[-1] if counted and round_number is None else round_number
    if number is None or number not in counted:
        raise NotFound(_("No ballots of %(ref)s are published yet.", ref=the_ref))
    text = await ballots.published_ballots(ctx, the_ref, number)
    suffix = "" if round_number is None else f"-round-{number}"
    return PublishedBallots(f"{the_ref}{suffix}-ballots.csv", text)


# --- Petitions -----------------------------------------------------------------------


async def all_petitions(ctx: ServiceContext) -> list[petitions.PetitionStatusView]:
    """Every petition, newest first, with its count of signatures (never the signers)."""
    async with ctx.transaction() as session:
        numbers = list(await session.scalars(select(Petition.id).order_by(Petition.id.desc())))
    return [await petitions.petition_status(ctx, petition_ref(number)) for number in numbers]


async def petition_page(ctx: ServiceContext, ref: str) -> petitions.PetitionStatusView:
    parse_ref("P", ref)  # a malformed ID is "not an ID" before any database work
    return await petitions.petition_status(ctx, ref)


def signatures_of_threshold(view: petitions.PetitionStatusView) -> Message:
    return _n(
        "%(signatures)s of %(count)s signature",
        "%(signatures)s of %(count)s signatures",
        view.progress.threshold,
        signatures=view.progress.signatures,
    )


def threshold_explained(view: petitions.PetitionStatusView) -> Message:
    """What the threshold is and what reaching it does (the count was fixed at opening)."""
    return _n(
        "When %(count)s Member has signed, a Party Thing is called on the petition. The "
        "threshold was fixed when the petition opened, from the %(members)s Members who "
        "were not suspended then.",
        "When %(count)s Members have signed, a Party Thing is called on the petition. The "
        "threshold was fixed when the petition opened, from the %(members)s Members who "
        "were not suspended then.",
        view.progress.threshold,
        members=view.members_at_opening,
    )


# --- The record of consensus ---------------------------------------------------------


@dataclass(frozen=True)
class ConsensusPage:
    #: Newest first; entries recorded for private assemblies only are left out.
    entries: tuple[ConsensusEntry, ...]
    #: The whole chain, private entries included: its length, head hash and soundness.
    check: ChainCheck

    @property
    def hidden(self) -> int:
        return self.check.count - len(self.entries)


async def consensus_page(ctx: ServiceContext) -> ConsensusPage:
    """The record of consensus, read the way ``harmony consensus --verify`` reads it (an
    entry edited by hand is reported as breaking the chain, never a crash)."""
    check = await check_chain(ctx)
    entries = await list_consensus(ctx)
    async with ctx.transaction() as session:
        private = set(
            await session.scalars(
                select(Assembly.slug).where(Assembly.visibility == Visibility.PRIVATE)
            )
        )
    shown = [e for e in entries if not e.assemblies or not set(e.assemblies) <= private]
    return ConsensusPage(tuple(reversed(shown)), check)
