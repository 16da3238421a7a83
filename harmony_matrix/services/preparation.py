"""The five preparation steps before a meeting: facts, informing, materials, the date."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution import process
from harmony_matrix.constitution.eligibility import Status
from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.constitution.scheduling import (
    DateCheck,
    MeetingKind,
    check_date,
    check_originator_available,
    kind_name,
)
from harmony_matrix.errors import InvalidInput, RuleViolation
from harmony_matrix.i18n import Message, _, _n, format_datetime, join, list_of, localised
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import (
    meeting_ref,
    person_by_matrix_id,
)
from harmony_matrix.services.meetings import (
    MAX_TEXT,
    MeetingSummary,
    check_agreed,
    meeting_for_organiser,
    summary,
)
from harmony_matrix.services.membership import (
    eligible_member_ids,
    not_suspended,
)
from harmony_matrix.services.records import audit, enqueue
from harmony_matrix.storage.models import (
    Meeting,
    MeetingMode,
    Person,
    PreparationRecord,
    Trigger,
    Unavailability,
)


@dataclass(frozen=True)
class ScheduleResult:
    meeting: MeetingSummary
    check: DateCheck


async def steps_done(session: AsyncSession, meeting: Meeting) -> set[PreparationStep]:
    rows = await session.scalars(
        select(PreparationRecord.step).where(PreparationRecord.meeting_id == meeting.id)
    )
    return set(rows)


def record_step(
    session: AsyncSession,
    meeting: Meeting,
    step: PreparationStep,
    person: Person | None,
    at: datetime,
    note: str = "",
) -> None:
    session.add(
        PreparationRecord(
            meeting_id=meeting.id,
            step=step,
            done_by_id=person.id if person else None,
            done_at=at,
            note=note,
        )
    )


def date_version(meeting: Meeting) -> str:
    """What an invitation said about the date; informing is per version."""
    return meeting.starts_at.isoformat() if meeting.starts_at else "undated"


async def informed_of_current_date(session: AsyncSession, meeting: Meeting) -> bool:
    found = await session.scalar(
        select(PreparationRecord.id).where(
            PreparationRecord.meeting_id == meeting.id,
            PreparationRecord.step == PreparationStep.INFORMED,
            PreparationRecord.note == date_version(meeting),
        )
    )
    return found is not None and meeting.starts_at is not None


async def record_preparation(
    ctx: ServiceContext, actor: str | None, ref: str, step: PreparationStep, note: str
) -> MeetingSummary:
    """Steps one and three: the facts collected and the materials prepared."""
    if step not in (PreparationStep.FACTS, PreparationStep.MATERIALS):
        raise InvalidInput(
            _("Record facts or materials here; the other steps have their own commands.")
        )
    note = note.strip()
    if not note:
        raise InvalidInput(_("Describe the facts or materials, or link to them."))
    if len(note) > MAX_TEXT:
        raise InvalidInput(_("That is too long (at most %(limit)s characters).", limit=MAX_TEXT))
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        process.check_preparation(meeting.phase)
        record_step(session, meeting, step, person, ctx.now(), note)
        audit(session, ctx.now(), person, f"meeting.{step.value}", meeting_ref(meeting.id))
        return summary(meeting)


async def schedule(
    ctx: ServiceContext,
    actor: str | None,
    ref: str,
    starts_at: datetime,
    *,
    place: str = "",
    online_url: str = "",
    accessibility: str = "",
    route_help: str = "",
    reason: str = "",
) -> ScheduleResult:
    """Step four: set the date, place and the provisions for disabled members.

    Clause: "Proper provisions must always be made to enable the disabled to attend
    either physically or digitally ... with clear communication of time, date, and
    location with available support materials for those who may struggle to plan routes
    and journeys." A place or a link is required, and so is an accessibility note.
    """
    if not (place.strip() or online_url.strip()):
        raise InvalidInput(_("Give a place (--place) or an online link (--online), or both."))
    if not accessibility.strip():
        raise InvalidInput(
            _(
                "Say how disabled members can take part (--access), for example: step-free "
                "entrance, captions on the call, documents in large print."
            )
        )
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        check_agreed(meeting)
        # "Should there be no clear winner, the debate and vote phases shall be repeated,
        # if necessary at a later date": a meeting back in debate after a vote may be
        # continued on another day. The 14/21-day limit is about the first date only.
        continuation = meeting.phase is Phase.DEBATE and meeting.vote_round >= 1
        if meeting.phase is not Phase.PLANNING and not continuation:
            raise RuleViolation(
                _(
                    "The date can be set before the meeting opens, or after a vote with "
                    "no clear winner to continue on another day."
                )
            )
        now = ctx.now()
        if starts_at <= now:
            raise RuleViolation(_("The date must be in the future."))
        if continuation:
            check = DateCheck(
                days_after_trigger=(starts_at - meeting.planning_triggered_at).days,
                limit_days=None,
                explanation_required=False,
            )
        else:
            check = check_date(
                meeting.kind,
                meeting.planning_triggered_at,
                starts_at,
                reason,
                ctx.rules,
                ctx.party.timezone,
            )
        if meeting.trigger is Trigger.PETITION and meeting.originator_id is not None:
            unavailable = await session.scalars(
                select(Unavailability.day).where(Unavailability.person_id == meeting.originator_id)
            )
            local_day = starts_at.astimezone(ZoneInfo(ctx.party.timezone)).date()
            check_originator_available(local_day, set(unavailable))
        meeting.starts_at = starts_at
        meeting.place = place.strip()
        meeting.online_url = online_url.strip()
        meeting.accessibility = accessibility.strip()
        meeting.route_help = route_help.strip()
        meeting.schedule_explanation = reason.strip() if check.explanation_required else ""
        meeting.mode = _mode(meeting.place, meeting.online_url)
        record_step(session, meeting, PreparationStep.DATE_SET, person, now, starts_at.isoformat())
        audit(
            session,
            now,
            person,
            "meeting.schedule",
            meeting_ref(meeting.id),
            starts_at=starts_at.isoformat(),
            days=check.days_after_trigger,
            explanation=meeting.schedule_explanation,
        )
        if check.explanation_required:
            # "express explanation of reasoning to the Assembly membership" (a Moot),
            # "to the Membership" (a Thing); invitations repeat it.
            await _tell_everyone(
                session, ctx, meeting, _explanation_notice(meeting, check), "explain"
            )
        return ScheduleResult(summary(meeting), check)


async def _tell_everyone(
    session: AsyncSession, ctx: ServiceContext, meeting: Meeting, message: Message, topic: str
) -> int:
    """A direct message to every eligible person, in their language, and a notice in each
    involved assembly's room. Queued once per topic and date; returns the DMs queued."""
    now = ctx.now()
    version = date_version(meeting)
    queued = 0
    for recipient in await eligible_people(session, meeting, now):
        queued += await enqueue(
            session,
            now,
            destination=recipient.matrix_id,
            is_direct=True,
            language=recipient.language,
            message=message,
            dedupe_key=f"{topic}:{meeting.id}:{version}:person:{recipient.id}",
        )
    for assembly in meeting.assemblies:
        if assembly.matrix_room_id:
            await enqueue(
                session,
                now,
                destination=assembly.matrix_room_id,
                is_direct=False,
                language=ctx.party.default_language,
                message=message,
                dedupe_key=f"{topic}:{meeting.id}:{version}:room:{assembly.id}",
            )
    return queued


def _mode(place: str, online_url: str) -> MeetingMode:
    if place and online_url:
        return MeetingMode.HYBRID
    return MeetingMode.ONLINE if online_url else MeetingMode.IN_PERSON


def _explanation_notice(meeting: Meeting, check: DateCheck) -> Message:
    return join(
        [
            _n(
                "%(ref)s is set %(count)s day after its planning began.",
                "%(ref)s is set %(count)s days after its planning began.",
                check.days_after_trigger,
                ref=meeting_ref(meeting.id),
            ),
            _n(
                "The usual limit is %(count)s day.",
                "The usual limit is %(count)s days.",
                check.limit_days or 0,
            ),
            _("The reason given: %(reason)s", reason=meeting.schedule_explanation),
        ],
        separator=" ",
    )


async def eligible_people(session: AsyncSession, meeting: Meeting, at: datetime) -> list[Person]:
    """Everyone eligible to speak, debate or vote: the people to inform.

    Clause: the Secretary should "inform all potentially interested Parties (the entire
    Membership) who are eligible to speak, debate, or vote". For a Moot or Thing that is
    the non-suspended members of each assembly plus every non-suspended Member (who may
    join any Moot); for a Party Thing, every non-suspended Member.
    """
    if meeting.kind in (MeetingKind.PARTY_THING, MeetingKind.PARTY_CONFERENCE):
        query = select(Person).where(Person.status == Status.MEMBER, not_suspended(at))
    else:
        ids: set[int] = set()
        for assembly in meeting.assemblies:
            ids |= await eligible_member_ids(session, assembly, at)
        members = await session.scalars(
            select(Person.id).where(Person.status == Status.MEMBER, not_suspended(at))
        )
        ids |= set(members)
        query = select(Person).where(Person.id.in_(ids))
    return list(await session.scalars(query.order_by(Person.id)))


async def notify(ctx: ServiceContext, actor: str | None, ref: str) -> int:
    """Step two: inform every eligible person by direct message, in their language.

    Sending again after the date changed informs everyone of the new date; sending twice
    for the same date queues nothing new. Returns how many messages were queued.
    """
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        if meeting.phase in process.FINISHED:
            raise RuleViolation(_("This meeting has already finished."))
        check_agreed(meeting)
        now = ctx.now()
        version = date_version(meeting)
        queued = await _tell_everyone(session, ctx, meeting, invitation(meeting, ctx), "invite")
        record_step(session, meeting, PreparationStep.INFORMED, person, now, version)
        audit(session, now, person, "meeting.notify", meeting_ref(meeting.id), queued=queued)
        return queued


def invitation(meeting: Meeting, ctx: ServiceContext) -> Message:
    """The message that informs an eligible person (the second preparation step)."""
    lines: list[Message] = [
        _(
            "You are invited to take part in %(kind)s %(ref)s%(assemblies)s.",
            kind=kind_name(meeting.kind),
            ref=meeting_ref(meeting.id),
            assemblies=_in_assemblies(meeting),
        ),
        _("Question: %(question)s", question=meeting.question),
    ]
    if meeting.starts_at is None:
        lines.append(_("When: the date will be announced."))
    else:
        lines.append(_("When: %(when)s", when=when(meeting.starts_at, ctx.party.timezone)))
    if meeting.place:
        lines.append(_("Where: %(place)s", place=meeting.place))
    if meeting.online_url:
        lines.append(_("Online: %(url)s", url=meeting.online_url))
    if meeting.accessibility:
        lines.append(_("Access: %(access)s", access=meeting.accessibility))
    if meeting.route_help:
        lines.append(_("Getting there: %(help)s", help=meeting.route_help))
    if meeting.schedule_explanation:
        lines.append(
            _("Why this date is later than usual: %(reason)s", reason=meeting.schedule_explanation)
        )
    return join(lines)


def when(moment: datetime, timezone: str) -> Message:
    """A meeting time in the reader's language and the party's timezone."""
    return localised(lambda language: format_datetime(moment, language, timezone))


def _in_assemblies(meeting: Meeting) -> Message:
    names = tuple(assembly.name for assembly in meeting.assemblies)
    listed = list_of(names)
    return localised(lambda language: f" ({listed.render(language)})" if names else "")


async def declare_unavailable(ctx: ServiceContext, actor: str, days: Sequence[str]) -> int:
    """A person (typically a petition's originator) says which days they cannot attend."""
    parsed = []
    for text in days:
        try:
            parsed.append(datetime.strptime(text.strip(), "%Y-%m-%d").date())
        except ValueError as error:
            raise InvalidInput(
                _("“%(value)s” is not a date; write YYYY-MM-DD.", value=text)
            ) from error
    async with ctx.transaction() as session:
        person = await person_by_matrix_id(session, actor)
        known = set(
            await session.scalars(
                select(Unavailability.day).where(Unavailability.person_id == person.id)
            )
        )
        new = sorted(set(parsed) - known)
        session.add_all(Unavailability(person_id=person.id, day=day) for day in new)
        return len(new)
