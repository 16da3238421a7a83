"""Moots and Things: what a meeting is, who organises it, calling and cancelling it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution import process
from harmony_matrix.constitution.eligibility import Act, check_may
from harmony_matrix.constitution.process import Phase
from harmony_matrix.constitution.scheduling import (
    MeetingKind,
)
from harmony_matrix.errors import InvalidInput, NotAllowed, RuleViolation
from harmony_matrix.i18n import _, list_of
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import (
    assembly_by_slug,
    meeting_by_ref,
    meeting_ref,
    person_by_matrix_id,
    petition_by_ref,
)
from harmony_matrix.services.membership import (
    GENERAL_SECRETARY,
    holds_office,
    roles_in,
    standing,
)
from harmony_matrix.services.records import audit
from harmony_matrix.services.voting_rights import open_round
from harmony_matrix.storage.models import (
    Assembly,
    Meeting,
    Person,
    PetitionStatus,
    Role,
    Trigger,
)

#: Limits that keep chat messages and pages readable.
MAX_QUESTION = 1000
MAX_TEXT = 2000


@dataclass(frozen=True)
class MeetingSummary:
    ref: str
    kind: MeetingKind
    question: str
    phase: Phase
    assemblies: tuple[str, ...]
    starts_at: datetime | None
    vote_round: int


def summary(meeting: Meeting) -> MeetingSummary:
    return MeetingSummary(
        ref=meeting_ref(meeting.id),
        kind=meeting.kind,
        question=meeting.question,
        phase=meeting.phase,
        assemblies=tuple(assembly.slug for assembly in meeting.assemblies),
        starts_at=meeting.starts_at,
        vote_round=meeting.vote_round,
    )


async def acting_person(session: AsyncSession, actor: str | None, at: datetime) -> Person | None:
    """The person acting, or None for the operator at the command line.

    A suspended person may not act at all in a meeting ("not eligible to speak").
    """
    if actor is None:
        return None
    person = await person_by_matrix_id(session, actor)
    check_may(standing(person, at), Act.SPEAK)
    return person


async def _is_general_secretary(session: AsyncSession, person: Person | None, at: datetime) -> bool:
    return person is None or await holds_office(session, person.id, GENERAL_SECRETARY, at)


async def check_organiser(
    session: AsyncSession,
    person: Person | None,
    assemblies: Sequence[Assembly],
    at: datetime,
    *,
    moderators_too: bool = False,
) -> None:
    """A secretary of an assembly involved, the General Secretary, or the operator.

    Clause: "the relevant Secretary (or, if collaborating between assemblies,
    Secretaries)"; "the General Secretary for a Party Moot".
    """
    if await _is_general_secretary(session, person, at):
        return
    assert person is not None
    allowed = {Role.SECRETARY, Role.MODERATOR} if moderators_too else {Role.SECRETARY}
    for assembly in assemblies:
        if allowed & await roles_in(session, person.id, assembly.id, at):
            return
    names = list_of(assembly.name for assembly in assemblies)
    if moderators_too:
        raise NotAllowed(
            _(
                "Only a secretary or moderator of %(assemblies)s, or the General Secretary, "
                "can do this.",
                assemblies=names,
            )
        )
    if not assemblies:
        raise NotAllowed(_("Only the General Secretary can do this for a Party Thing."))
    raise NotAllowed(
        _(
            "Only a secretary of %(assemblies)s, or the General Secretary, can do this.",
            assemblies=names,
        )
    )


async def meeting_for_organiser(
    session: AsyncSession, ctx: ServiceContext, actor: str | None, ref: str, **options: bool
) -> tuple[Meeting, Person | None]:
    now = ctx.now()
    person = await acting_person(session, actor, now)
    meeting = await meeting_by_ref(session, ref, lock=True)
    await check_organiser(session, person, meeting.assemblies, now, **options)
    return meeting, person


def _check_question(question: str) -> str:
    question = question.strip()
    if not question:
        raise InvalidInput(
            _("Say what the meeting is to decide, for example: !moot call Should we meet monthly?")
        )
    if len(question) > MAX_QUESTION:
        raise InvalidInput(
            _("The question is too long (at most %(limit)s characters).", limit=MAX_QUESTION)
        )
    return question


def check_text(text: str) -> str:
    """A member's text for a record: not empty, not longer than a page can show."""
    text = text.strip()
    if not text:
        raise InvalidInput(_("Write the text after the command."))
    if len(text) > MAX_TEXT:
        raise InvalidInput(_("That is too long (at most %(limit)s characters).", limit=MAX_TEXT))
    return text


async def _create_meeting(
    session: AsyncSession,
    ctx: ServiceContext,
    *,
    kind: MeetingKind,
    question: str,
    assemblies: Sequence[Assembly],
    caller: Person | None,
    trigger: Trigger,
    originator: Person | None = None,
    petition_id: int | None = None,
    earlier_meeting_id: int | None = None,
    triggered_at: datetime | None = None,
) -> Meeting:
    now = ctx.now()
    # The person who asked for the meeting: a petition's originator, else its caller.
    asked_by = originator or caller
    meeting = Meeting(
        kind=kind,
        question=_check_question(question),
        trigger=trigger,
        originator_id=asked_by.id if asked_by else None,
        petition_id=petition_id,
        earlier_meeting_id=earlier_meeting_id,
        called_by_id=caller.id if caller else None,
        planning_triggered_at=triggered_at or now,
        starts_at=None,
        mode=None,
        phase=Phase.PLANNING,
        vote_round=0,
        created_at=now,
    )
    meeting.assemblies = list(assemblies)
    session.add(meeting)
    await session.flush()
    audit(
        session,
        now,
        caller,
        "meeting.call",
        meeting_ref(meeting.id),
        kind=kind.value,
        assemblies=[assembly.slug for assembly in assemblies],
        trigger=trigger.value,
    )
    return meeting


async def call_moot(
    ctx: ServiceContext,
    actor: str | None,
    assembly_slug: str,
    question: str,
    *,
    earlier_meeting: str | None = None,
) -> MeetingSummary:
    """A secretary calls an Assembly Moot of their assembly."""
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        assembly = await assembly_by_slug(session, assembly_slug)
        await check_organiser(session, person, [assembly], now)
        earlier = await meeting_by_ref(session, earlier_meeting) if earlier_meeting else None
        if earlier is not None:
            process.check_can_follow_on(earlier.phase, meeting_ref(earlier.id))
        meeting = await _create_meeting(
            session,
            ctx,
            kind=MeetingKind.ASSEMBLY_MOOT,
            question=question,
            assemblies=[assembly],
            caller=person,
            trigger=Trigger.EARLIER_DECISION if earlier else Trigger.GATHERING,
            earlier_meeting_id=earlier.id if earlier else None,
        )
        return summary(meeting)


async def call_thing(
    ctx: ServiceContext, actor: str | None, assembly_slugs: Sequence[str], question: str
) -> MeetingSummary:
    """A Thing of Assemblies: two or more assemblies decide together."""
    slugs = list(dict.fromkeys(slug.strip() for slug in assembly_slugs if slug.strip()))
    if len(slugs) < 2:
        raise InvalidInput(
            _("A Thing of Assemblies needs at least two assemblies, for example --assemblies a,b.")
        )
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        assemblies = [await assembly_by_slug(session, slug) for slug in slugs]
        await check_organiser(session, person, assemblies, now)
        meeting = await _create_meeting(
            session,
            ctx,
            kind=MeetingKind.THING_OF_ASSEMBLIES,
            question=question,
            assemblies=assemblies,
            caller=person,
            trigger=Trigger.GATHERING,
        )
        return summary(meeting)


async def call_party_thing(
    ctx: ServiceContext, actor: str | None, petition: str, question: str | None = None
) -> MeetingSummary:
    """The General Secretary calls the Party Thing a successful petition asked for.

    Planning is triggered when the petition reached its threshold; the originator of
    the petition is the meeting's originator and must be present.
    """
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        await check_organiser(session, person, [], now)
        found = await petition_by_ref(session, petition, lock=True)
        if found.status is not PetitionStatus.REACHED or found.reached_at is None:
            raise RuleViolation(
                _(
                    "Petition %(ref)s has not reached its threshold, so it cannot call a "
                    "Party Thing yet.",
                    ref=f"P-{found.id}",
                )
            )
        already = await session.scalar(select(Meeting.id).where(Meeting.petition_id == found.id))
        if already is not None:
            raise RuleViolation(
                _(
                    "Petition %(ref)s already called meeting %(meeting)s.",
                    ref=f"P-{found.id}",
                    meeting=meeting_ref(already),
                )
            )
        originator = await session.get(Person, found.originator_id)
        meeting = await _create_meeting(
            session,
            ctx,
            kind=MeetingKind.PARTY_THING,
            question=question or found.title,
            assemblies=[],
            caller=person,
            trigger=Trigger.PETITION,
            originator=originator,
            petition_id=found.id,
            triggered_at=found.reached_at,
        )
        found.status = PetitionStatus.CLOSED
        return summary(meeting)


async def meeting_summary(ctx: ServiceContext, ref: str) -> MeetingSummary:
    async with ctx.transaction() as session:
        return summary(await meeting_by_ref(session, ref))


async def cancel_meeting(
    ctx: ServiceContext, actor: str | None, ref: str, reason: str
) -> MeetingSummary:
    reason = check_text(reason)
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        process.check_can_cancel(meeting.phase)
        if await open_round(session, meeting) is not None:
            raise RuleViolation(
                _("Close the ballot first: a ballot that people may have used must be counted.")
            )
        meeting.phase = Phase.CANCELLED
        audit(session, ctx.now(), person, "meeting.cancel", meeting_ref(meeting.id), reason=reason)
        return summary(meeting)
