"""The five preparation steps before a meeting: facts, informing, materials, the date."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution import process
from harmony_matrix.constitution.eligibility import Status
from harmony_matrix.constitution.interpretations import DaysCountedFrom
from harmony_matrix.constitution.process import NoticeItem, Phase, PreparationStep
from harmony_matrix.constitution.scheduling import (
    DateCheck,
    MeetingKind,
    check_date,
    check_originator_available,
    kind_explained,
    kind_name,
)
from harmony_matrix.errors import InvalidInput, RuleViolation
from harmony_matrix.i18n import (
    Message,
    _,
    _n,
    format_datetime,
    join,
    list_of,
    localised,
    member_words,
    verbatim,
)
from harmony_matrix.services.announcements import announce
from harmony_matrix.services.calendar import (
    CALENDAR_TYPE,
    calendar_file_name,
    meeting_calendar,
)
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import (
    meeting_ref,
    person_by_matrix_id,
)
from harmony_matrix.services.meeting_state import queue_state
from harmony_matrix.services.meetings import (
    MAX_TEXT,
    MeetingSummary,
    check_agreed,
    meeting_for_organiser,
    summary,
)
from harmony_matrix.services.membership import (
    GENERAL_SECRETARY,
    eligible_member_ids,
    not_suspended,
    office_holders,
)
from harmony_matrix.services.records import audit, direct_message, enqueue
from harmony_matrix.services.whereabouts import whereabouts
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
    """The date a published explanation was about (one explanation per date)."""
    return meeting.starts_at.isoformat() if meeting.starts_at else "undated"


def notice_of(meeting: Meeting) -> dict[str, str]:
    """What the notice to eligible members says about when and where, item by item."""
    starts_at = meeting.starts_at.astimezone(UTC).isoformat() if meeting.starts_at else ""
    return {
        NoticeItem.WHEN.value: starts_at,
        NoticeItem.PLACE.value: meeting.place,
        NoticeItem.ONLINE.value: meeting.online_url,
        NoticeItem.ACCESS.value: meeting.accessibility,
        NoticeItem.ROUTE.value: meeting.route_help,
    }


def _notice_note(meeting: Meeting) -> str:
    """The informing step's note: the notice as sent, so a later change is found."""
    return json.dumps(notice_of(meeting), sort_keys=True, ensure_ascii=False)


async def _notices(session: AsyncSession, meeting: Meeting) -> list[str]:
    """The notes of every informing step, oldest first."""
    rows = await session.scalars(
        select(PreparationRecord.note)
        .where(
            PreparationRecord.meeting_id == meeting.id,
            PreparationRecord.step == PreparationStep.INFORMED,
        )
        .order_by(PreparationRecord.id)
    )
    return list(rows)


def _changes(told: str | None, meeting: Meeting) -> set[NoticeItem]:
    """The items the meeting's notice has changed since ``told`` (every item if members
    were never told, or were told in an older form that recorded the date only)."""
    try:
        said = json.loads(told) if told else None
    except ValueError:
        said = None
    if not isinstance(said, dict):
        return set(NoticeItem)
    current = notice_of(meeting)
    return {item for item in NoticeItem if said.get(item.value) != current[item.value]}


async def changed_since_notice(session: AsyncSession, meeting: Meeting) -> set[NoticeItem]:
    """What changed since eligible members were last informed: empty when their last
    notice is the notice as it stands. Only the last notice counts: members told of a
    new place, and then not told it moved back, expect the new place."""
    notices = await _notices(session, meeting)
    return _changes(notices[-1] if notices else None, meeting)


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

    A continuation after a vote with no clear winner needs ``reason``: why the vote
    continues on that day. Members are told it when they are informed again, which must
    happen before the vote continues.
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
        continuation = is_continuation(meeting)
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
            if not reason.strip():
                raise InvalidInput(
                    _(
                        "Say why the vote continues on a later day (--reason). Everyone "
                        "eligible is told the reason with the new date."
                    )
                )
            if len(reason.strip()) > MAX_TEXT:
                raise InvalidInput(
                    _("That is too long (at most %(limit)s characters).", limit=MAX_TEXT)
                )
            check = DateCheck(
                days_after_trigger=(starts_at - meeting.planning_triggered_at).days,
                limit_days=None,
                explanation_required=False,
                counted_from=DaysCountedFrom.TRIGGER,
                days_counted=(starts_at - meeting.planning_triggered_at).days,
            )
        else:
            check = check_date(
                meeting.kind,
                meeting.planning_triggered_at,
                starts_at,
                reason,
                ctx.rules,
                ctx.party.timezone,
                scheduled_at=now,
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
        # A later-than-usual first date, or a continuation: the reason goes to members.
        explained = check.explanation_required or continuation
        meeting.schedule_explanation = reason.strip() if explained else ""
        meeting.mode = _mode(meeting.place, meeting.online_url)
        # A continuation's new date shows in the meeting's state at once.
        await queue_state(session, ctx, meeting)
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
                session,
                ctx,
                meeting,
                _explanation_notice(meeting, check),
                "explain",
                date_version(meeting),
            )
        return ScheduleResult(summary(meeting), check)


async def _tell_everyone(
    session: AsyncSession,
    ctx: ServiceContext,
    meeting: Meeting,
    message: Message,
    topic: str,
    version: str,
    *,
    calendar_sequence: int | None = None,
) -> int:
    """A direct message to every eligible person, in their language, and a notice in each
    involved assembly's room. Queued once per topic and version; returns the DMs queued.

    A Thing's own room gets the notice too (a Moot's room is its assembly's, which has
    it already). With ``calendar_sequence`` (a notice of a dated meeting), each direct
    message is followed by the meeting's .ics in the recipient's language, and the .ics
    is posted in the meeting's room.
    """
    now = ctx.now()
    queued = 0
    # An undated meeting has nothing to put in a calendar.
    sequence = calendar_sequence if meeting.starts_at is not None else None
    calendars: dict[str, bytes] = {}  # one file per language, not per person
    for recipient in await eligible_people(session, meeting, now):
        told = await direct_message(
            session,
            now,
            recipient,
            message=message,
            dedupe_key=f"{topic}:{meeting.id}:{version}:person:{recipient.id}",
        )
        queued += told
        # Queued with its notice, in the same transaction: a notice queued before has
        # its file already.
        if told and sequence is not None:
            language = recipient.language
            if language not in calendars:
                calendars[language] = meeting_calendar(
                    meeting, ctx, sequence=sequence, language=language
                )
            await direct_message(
                session,
                now,
                recipient,
                message=verbatim(calendar_file_name(meeting)),
                dedupe_key=f"{topic}-ics:{meeting.id}:{version}:person:{recipient.id}",
                attachment=calendars[language],
                attachment_type=CALENDAR_TYPE,
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
    if meeting.kind is not MeetingKind.ASSEMBLY_MOOT:
        await announce(session, ctx, meeting, message, f"{topic}:{meeting.id}:{version}:meeting")
    if sequence is not None:
        await announce(
            session,
            ctx,
            meeting,
            verbatim(calendar_file_name(meeting)),
            f"{topic}-ics:{meeting.id}:{version}:meeting",
            attachment=meeting_calendar(meeting, ctx, sequence=sequence),
            attachment_type=CALENDAR_TYPE,
        )
    return queued


def _mode(place: str, online_url: str) -> MeetingMode:
    if place and online_url:
        return MeetingMode.HYBRID
    return MeetingMode.ONLINE if online_url else MeetingMode.IN_PERSON


def _explanation_notice(meeting: Meeting, check: DateCheck) -> Message:
    if check.counted_from is DaysCountedFrom.SCHEDULING:
        how_far = _n(
            "%(ref)s is set %(count)s day ahead.",
            "%(ref)s is set %(count)s days ahead.",
            check.days_counted,
            ref=meeting_ref(meeting.id),
        )
    else:
        how_far = _n(
            "%(ref)s is set %(count)s day after its planning began.",
            "%(ref)s is set %(count)s days after its planning began.",
            check.days_counted,
            ref=meeting_ref(meeting.id),
        )
    return join(
        [
            how_far,
            _n(
                "The usual limit is %(count)s day.",
                "The usual limit is %(count)s days.",
                check.limit_days or 0,
            ),
            _(
                "The reason given: %(reason)s",
                reason=member_words(meeting.schedule_explanation or ""),
            ),
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

    Sending again after the date, time, place, link, access or route help changed
    informs everyone again; sending again with nothing changed queues nothing new
    (except for people who became eligible since). Returns how many were queued.
    """
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        if meeting.phase in process.FINISHED:
            raise RuleViolation(_("This meeting has already finished."))
        check_agreed(meeting)
        now = ctx.now()
        notices = await _notices(session, meeting)
        changed = _changes(notices[-1] if notices else None, meeting)
        # The notices are numbered: the same notice is never queued twice to anyone, and
        # a notice that returns to an earlier wording after a change is a new one.
        number = len(notices) + 1 if changed else len(notices)
        queued = await _tell_everyone(
            session,
            ctx,
            meeting,
            invitation(meeting, ctx),
            "notice",
            str(number),
            calendar_sequence=number,
        )
        if changed:
            record_step(
                session, meeting, PreparationStep.INFORMED, person, now, _notice_note(meeting)
            )
        audit(
            session,
            now,
            person,
            "meeting.notify",
            meeting_ref(meeting.id),
            queued=queued,
            notice=number,
            changed=sorted(item.value for item in changed),
        )
        return queued


def is_continuation(meeting: Meeting) -> bool:
    """Back in debate after a vote with no clear winner: "the debate and vote phases
    shall be repeated, if necessary at a later date"."""
    return meeting.phase is Phase.DEBATE and meeting.vote_round >= 1


def invitation(meeting: Meeting, ctx: ServiceContext) -> Message:
    """The message that informs an eligible person (the second preparation step), or of
    the date on which a vote with no clear winner continues."""
    continuation = is_continuation(meeting)
    if continuation:
        opening = _(
            "%(kind)s %(ref)s%(assemblies)s continues. Its vote had no clear winner, so "
            "the meeting debates and votes again.",
            kind=kind_name(meeting.kind),
            ref=meeting_ref(meeting.id),
            assemblies=_in_assemblies(meeting),
        )
    else:
        opening = _(
            "You are invited to take part in %(kind)s %(ref)s%(assemblies)s.",
            kind=kind_name(meeting.kind),
            ref=meeting_ref(meeting.id),
            assemblies=_in_assemblies(meeting),
        )
    lines: list[Message] = [opening]
    if not continuation:
        lines.append(kind_explained(meeting.kind))
    lines.append(_("Question: %(question)s", question=member_words(meeting.question)))
    if meeting.starts_at is None:
        lines.append(_("When: the date will be announced."))
    else:
        lines.append(_("When: %(when)s", when=when(meeting.starts_at, ctx.party.timezone)))
    lines += whereabouts(meeting)
    if meeting.schedule_explanation and continuation:
        lines.append(
            _(
                "Why it continues on this date: %(reason)s",
                reason=member_words(meeting.schedule_explanation or ""),
            )
        )
    elif meeting.schedule_explanation:
        lines.append(
            _(
                "Why this date is later than usual: %(reason)s",
                reason=member_words(meeting.schedule_explanation or ""),
            )
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
    """A person (typically a petition's originator) says which days they cannot attend.

    Clause: "The originator of any petition must be present; as such, the Secretary
    responsible for arranging the Moot ... must take this into account". A meeting their
    petition called that is already set for one of those days is reported to whoever
    arranges it, and cannot open on that day (``roll_call.open_meeting``).
    """
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
        await _report_clashes(session, ctx, person, set(new))
        return len(new)


async def _report_clashes(
    session: AsyncSession, ctx: ServiceContext, originator: Person, days: set[date]
) -> None:
    """Tell the organisers of each meeting the originator's petition called, still to be
    held, that it is set for one of ``days``: the person who called it and, for a Party
    Thing, the General Secretary ("the General Secretary for a Party Moot")."""
    if not days:
        return
    now = ctx.now()
    zone = ZoneInfo(ctx.party.timezone)
    meetings = await session.scalars(
        select(Meeting)
        .where(
            Meeting.trigger == Trigger.PETITION,
            Meeting.originator_id == originator.id,
            Meeting.starts_at.is_not(None),
            Meeting.starts_at >= now,
            Meeting.phase.in_((Phase.PLANNING, Phase.DEBATE)),
        )
        .order_by(Meeting.id)
    )
    for meeting in meetings:
        assert meeting.starts_at is not None
        day = meeting.starts_at.astimezone(zone).date()
        if day not in days or (meeting.phase is Phase.DEBATE and not is_continuation(meeting)):
            continue
        organisers: dict[int, Person] = {}
        if meeting.called_by_id is not None:
            caller = await session.get(Person, meeting.called_by_id)
            if caller is not None:
                organisers[caller.id] = caller
        if meeting.kind in (MeetingKind.PARTY_THING, MeetingKind.PARTY_CONFERENCE):
            for secretary in await office_holders(session, GENERAL_SECRETARY, now):
                organisers[secretary.id] = secretary
        message = _(
            "%(name)s, who started the petition behind %(ref)s, has said they cannot attend "
            "on %(day)s, the day it is set for. The originator must be present, so the "
            "meeting cannot be held that day: set another date and inform everyone again.",
            name=member_words(originator.display_name),
            ref=meeting_ref(meeting.id),
            day=day.isoformat(),
        )
        for organiser in organisers.values():
            await direct_message(
                session,
                now,
                organiser,
                message=message,
                dedupe_key=(
                    f"unavailable:{meeting.id}:{meeting.starts_at.isoformat()}:{organiser.id}"
                ),
            )
        audit(
            session,
            now,
            originator,
            "meeting.originator_unavailable",
            meeting_ref(meeting.id),
            day=day.isoformat(),
            told=len(organisers),
        )
