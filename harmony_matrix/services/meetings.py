"""Moots and Things: calling, scheduling, preparing, informing, and running the phases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution import process
from harmony_matrix.constitution.eligibility import Act, Status, check_may, may_vote_at_moot
from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.constitution.quorum import (
    AssemblyPresence,
    Quorum,
    moot_quorum,
    thing_quorum_reached,
)
from harmony_matrix.constitution.scheduling import (
    DateCheck,
    MeetingKind,
    check_date,
    check_originator_available,
    kind_name,
)
from harmony_matrix.errors import InvalidInput, NotAllowed, NotFound, RuleViolation
from harmony_matrix.i18n import Message, _, format_datetime, join, list_of, localised
from harmony_matrix.services import consensus
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
    active_population,
    eligible_member_ids,
    holds_office,
    member_ids,
    not_suspended,
    own_quorum_share,
    record_activity,
    roles_in,
    standing,
)
from harmony_matrix.services.records import audit, enqueue
from harmony_matrix.storage.models import (
    Assembly,
    Attendance,
    BallotRound,
    ConsensusMethod,
    Meeting,
    MeetingAssembly,
    MeetingMode,
    Option,
    OptionStatus,
    OptionSuggestion,
    Person,
    PetitionStatus,
    PreparationRecord,
    Role,
    Suggestion,
    Trigger,
    Unavailability,
)
from harmony_matrix.voting.rights import grant_right, open_round

#: Limits that keep chat messages and pages readable.
MAX_QUESTION = 1000
MAX_TEXT = 2000

# ---------------------------------------------------------------------------------------
# Results returned to the bot, the web and the command line
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeetingSummary:
    ref: str
    kind: MeetingKind
    question: str
    phase: Phase
    assemblies: tuple[str, ...]
    starts_at: datetime | None
    vote_round: int


@dataclass(frozen=True)
class AssemblyQuorumStatus:
    slug: str
    name: str
    quorum: Quorum
    present: int

    @property
    def reached(self) -> bool:
        return self.quorum.reached_by(self.present)


@dataclass(frozen=True)
class QuorumStatus:
    meeting_ref: str
    attendees: int
    #: Empty for a Party Thing or Conference: the constitution sets no quorum for them.
    assemblies: tuple[AssemblyQuorumStatus, ...]
    reached: bool


@dataclass(frozen=True)
class ScheduleResult:
    meeting: MeetingSummary
    check: DateCheck


def _summary(meeting: Meeting) -> MeetingSummary:
    return MeetingSummary(
        ref=meeting_ref(meeting.id),
        kind=meeting.kind,
        question=meeting.question,
        phase=meeting.phase,
        assemblies=tuple(assembly.slug for assembly in meeting.assemblies),
        starts_at=meeting.starts_at,
        vote_round=meeting.vote_round,
    )


# ---------------------------------------------------------------------------------------
# Who may do what
# ---------------------------------------------------------------------------------------


async def _actor(session: AsyncSession, actor: str | None, at: datetime) -> Person | None:
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


async def _check_organiser(
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
    person = await _actor(session, actor, now)
    meeting = await meeting_by_ref(session, ref, lock=True)
    await _check_organiser(session, person, meeting.assemblies, now, **options)
    return meeting, person


# ---------------------------------------------------------------------------------------
# Calling a meeting
# ---------------------------------------------------------------------------------------


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
        person = await _actor(session, actor, now)
        assembly = await assembly_by_slug(session, assembly_slug)
        await _check_organiser(session, person, [assembly], now)
        earlier = await meeting_by_ref(session, earlier_meeting) if earlier_meeting else None
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
        return _summary(meeting)


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
        person = await _actor(session, actor, now)
        assemblies = [await assembly_by_slug(session, slug) for slug in slugs]
        await _check_organiser(session, person, assemblies, now)
        meeting = await _create_meeting(
            session,
            ctx,
            kind=MeetingKind.THING_OF_ASSEMBLIES,
            question=question,
            assemblies=assemblies,
            caller=person,
            trigger=Trigger.GATHERING,
        )
        return _summary(meeting)


async def call_party_thing(
    ctx: ServiceContext, actor: str | None, petition: str, question: str | None = None
) -> MeetingSummary:
    """The General Secretary calls the Party Thing a successful petition asked for.

    Planning is triggered when the petition reached its threshold; the originator of
    the petition is the meeting's originator and must be present.
    """
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await _actor(session, actor, now)
        await _check_organiser(session, person, [], now)
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
        return _summary(meeting)


# ---------------------------------------------------------------------------------------
# Preparation: facts, informing, materials, date
# ---------------------------------------------------------------------------------------


async def _steps_done(session: AsyncSession, meeting: Meeting) -> set[PreparationStep]:
    rows = await session.scalars(
        select(PreparationRecord.step).where(PreparationRecord.meeting_id == meeting.id)
    )
    return set(rows)


def _record_step(
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


def _date_version(meeting: Meeting) -> str:
    """What an invitation said about the date; informing is per version."""
    return meeting.starts_at.isoformat() if meeting.starts_at else "undated"


async def _informed_of_current_date(session: AsyncSession, meeting: Meeting) -> bool:
    found = await session.scalar(
        select(PreparationRecord.id).where(
            PreparationRecord.meeting_id == meeting.id,
            PreparationRecord.step == PreparationStep.INFORMED,
            PreparationRecord.note == _date_version(meeting),
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
        _record_step(session, meeting, step, person, ctx.now(), note)
        audit(session, ctx.now(), person, f"meeting.{step.value}", meeting_ref(meeting.id))
        return _summary(meeting)


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
        _record_step(session, meeting, PreparationStep.DATE_SET, person, now, starts_at.isoformat())
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
        return ScheduleResult(_summary(meeting), check)


async def _tell_everyone(
    session: AsyncSession, ctx: ServiceContext, meeting: Meeting, message: Message, topic: str
) -> int:
    """A direct message to every eligible person, in their language, and a notice in each
    involved assembly's room. Queued once per topic and date; returns the DMs queued."""
    now = ctx.now()
    version = _date_version(meeting)
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
    return _(
        "%(ref)s is set %(days)s days after its planning began, beyond the usual %(limit)s "
        "days. The reason given: %(reason)s",
        ref=meeting_ref(meeting.id),
        days=check.days_after_trigger,
        limit=check.limit_days,
        reason=meeting.schedule_explanation,
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
        now = ctx.now()
        version = _date_version(meeting)
        queued = await _tell_everyone(session, ctx, meeting, invitation(meeting, ctx), "invite")
        _record_step(session, meeting, PreparationStep.INFORMED, person, now, version)
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


# ---------------------------------------------------------------------------------------
# The meeting itself: opening, roll call, quorum
# ---------------------------------------------------------------------------------------


async def open_meeting(ctx: ServiceContext, actor: str | None, ref: str) -> MeetingSummary:
    """Step five: the meeting is held. Opens the roll call and the discussion phase."""
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        process.check_can_open(
            meeting.phase,
            await _steps_done(session, meeting),
            ctx.rules,
            informed_of_date=await _informed_of_current_date(session, meeting),
        )
        now = ctx.now()
        links = await session.scalars(
            select(MeetingAssembly).where(MeetingAssembly.meeting_id == meeting.id)
        )
        for link in links:
            assembly = await session.get(Assembly, link.assembly_id)
            assert assembly is not None
            link.active_population = await active_population(session, assembly, ctx.rules, now)
        meeting.phase = Phase.DISCUSSION
        _record_step(session, meeting, PreparationStep.HELD, person, now)
        audit(session, now, person, "meeting.open", meeting_ref(meeting.id))
        return _summary(meeting)


async def may_take_part(
    session: AsyncSession, meeting: Meeting, person: Person, at: datetime
) -> bool:
    """Interpretation 3, extended to Things: a member of an assembly involved, or any
    non-suspended Member. A Party Thing decides "on a matter of Party Consensus" for the
    Membership: non-suspended Members only."""
    in_assembly = False
    for assembly in meeting.assemblies:  # a Party Thing has none
        if person.id in await member_ids(session, assembly, at):
            in_assembly = True
            break
    return may_vote_at_moot(standing(person, at), in_assembly, present=True)


async def record_attendance(
    ctx: ServiceContext, actor: str | None, ref: str, who: str | None = None
) -> QuorumStatus:
    """Answer the roll call (``who`` None), or a secretary records someone present."""
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await _actor(session, actor, now)
        meeting = await meeting_by_ref(session, ref, lock=True)
        if who is not None and who != actor:
            await _check_organiser(session, person, meeting.assemblies, now, moderators_too=True)
            attendee = await person_by_matrix_id(session, who)
            check_may(standing(attendee, now), Act.SPEAK)
        elif person is None:
            raise InvalidInput(_("Say who is present."))
        else:
            attendee = person
        if meeting.phase not in (Phase.DISCUSSION, Phase.DEBATE, Phase.VOTE):
            raise RuleViolation(_("The roll call is open only while the meeting is in progress."))
        if not await may_take_part(session, meeting, attendee, now):
            raise NotAllowed(
                _(
                    "%(name)s is not a member of the assemblies in this meeting and not a "
                    "party Member, so cannot take part.",
                    name=attendee.display_name,
                )
            )
        present = await session.scalar(
            select(Attendance.id).where(
                Attendance.meeting_id == meeting.id, Attendance.person_id == attendee.id
            )
        )
        if present is None:
            session.add(
                Attendance(
                    meeting_id=meeting.id,
                    person_id=attendee.id,
                    recorded_by_id=person.id if person else None,
                    at=now,
                )
            )
            await record_activity(session, attendee.id, [a.id for a in meeting.assemblies], now)
            audit(
                session,
                now,
                person,
                "meeting.attend",
                meeting_ref(meeting.id),
                attendee=attendee.matrix_id,
            )
            # Someone arriving while the ballot is open votes too (interpretation 3).
            round_ = await open_round(session, meeting)
            if round_ is not None:
                await grant_right(session, now, meeting, round_, attendee)
        await session.flush()
        return await _quorum_status(session, ctx, meeting)


async def meeting_summary(ctx: ServiceContext, ref: str) -> MeetingSummary:
    async with ctx.transaction() as session:
        return _summary(await meeting_by_ref(session, ref))


async def meeting_quorum(ctx: ServiceContext, ref: str) -> QuorumStatus:
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, ref)
        return await _quorum_status(session, ctx, meeting)


async def _quorum_status(
    session: AsyncSession, ctx: ServiceContext, meeting: Meeting
) -> QuorumStatus:
    now = ctx.now()
    attendees = set(
        await session.scalars(
            select(Attendance.person_id).where(Attendance.meeting_id == meeting.id)
        )
    )
    # Only attendees who are not suspended now count (a suspension during the meeting).
    allowed = set(
        await session.scalars(select(Person.id).where(Person.id.in_(attendees), not_suspended(now)))
    )
    attendees &= allowed
    statuses: list[AssemblyQuorumStatus] = []
    for link in await session.scalars(
        select(MeetingAssembly).where(MeetingAssembly.meeting_id == meeting.id)
    ):
        assembly = await session.get(Assembly, link.assembly_id)
        assert assembly is not None
        population = link.active_population
        if population is None:
            population = await active_population(session, assembly, ctx.rules, now)
        members = await member_ids(session, assembly, now)
        statuses.append(
            AssemblyQuorumStatus(
                slug=assembly.slug,
                name=assembly.name,
                quorum=moot_quorum(population, own_quorum_share(assembly), ctx.rules),
                present=len(attendees & members),
            )
        )
    if statuses:
        reached = thing_quorum_reached(
            {s.slug: AssemblyPresence(s.quorum, s.present) for s in statuses}
        )
    else:
        reached = True
    return QuorumStatus(
        meeting_ref=meeting_ref(meeting.id),
        attendees=len(attendees),
        assemblies=tuple(statuses),
        reached=reached,
    )


# ---------------------------------------------------------------------------------------
# Discussion and debate
# ---------------------------------------------------------------------------------------


def _check_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise InvalidInput(_("Write the text after the command."))
    if len(text) > MAX_TEXT:
        raise InvalidInput(_("That is too long (at most %(limit)s characters).", limit=MAX_TEXT))
    return text


async def add_suggestion(
    ctx: ServiceContext, actor: str, ref: str, text: str, *, author: str | None = None
) -> int:
    """Discussion phase: a suggestion is written down. Returns its number.

    A secretary or moderator may write down someone else's suggestion (``author``).
    """
    text = _check_text(text)
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await _actor(session, actor, now)
        assert person is not None
        meeting = await meeting_by_ref(session, ref, lock=True)
        process.check_can_suggest(meeting.phase)
        writer = person
        if author is not None and author != actor:
            await _check_organiser(session, person, meeting.assemblies, now, moderators_too=True)
            writer = await person_by_matrix_id(session, author)
            check_may(standing(writer, now), Act.SPEAK)
        if not await may_take_part(session, meeting, writer, now):
            raise NotAllowed(_("Only people eligible for this meeting can make suggestions in it."))
        number = await _next_number(session, Suggestion, meeting.id)
        session.add(
            Suggestion(
                meeting_id=meeting.id,
                number=number,
                text=text,
                author_id=writer.id,
                recorded_by_id=person.id,
                created_at=now,
            )
        )
        await record_activity(session, writer.id, [a.id for a in meeting.assemblies], now)
        audit(session, now, person, "meeting.suggest", meeting_ref(meeting.id), number=number)
        return number


async def _next_number(
    session: AsyncSession, model: type[Suggestion] | type[Option], meeting_id: int
) -> int:
    highest = await session.scalar(
        select(func.max(model.number)).where(model.meeting_id == meeting_id)
    )
    return (highest or 0) + 1


async def start_debate(ctx: ServiceContext, actor: str | None, ref: str) -> MeetingSummary:
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        process.check_can_debate(meeting.phase)
        meeting.phase = Phase.DEBATE
        audit(session, ctx.now(), person, "meeting.debate", meeting_ref(meeting.id))
        return _summary(meeting)


async def add_option(
    ctx: ServiceContext, actor: str | None, ref: str, text: str, *, suggestions: Sequence[int] = ()
) -> int:
    """Debate phase: the moderator collates ideas into an option. Returns its number."""
    text = _check_text(text)
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref, moderators_too=True)
        process.check_can_edit_options(meeting.phase)
        option = await _new_option(session, ctx, meeting, person, text)
        for number in dict.fromkeys(suggestions):
            suggestion = await session.scalar(
                select(Suggestion).where(
                    Suggestion.meeting_id == meeting.id, Suggestion.number == number
                )
            )
            if suggestion is None:
                raise NotFound(
                    _("There is no suggestion %(number)s in this meeting.", number=number)
                )
            session.add(OptionSuggestion(option_id=option.id, suggestion_id=suggestion.id))
        audit(
            session, ctx.now(), person, "option.add", meeting_ref(meeting.id), number=option.number
        )
        return option.number


async def _new_option(
    session: AsyncSession, ctx: ServiceContext, meeting: Meeting, person: Person | None, text: str
) -> Option:
    option = Option(
        meeting_id=meeting.id,
        number=await _next_number(session, Option, meeting.id),
        text=text,
        status=OptionStatus.ACTIVE,
        merged_into_id=None,
        created_by_id=person.id if person else None,
        created_at=ctx.now(),
    )
    session.add(option)
    await session.flush()
    return option


async def _active_option(session: AsyncSession, meeting: Meeting, number: int) -> Option:
    option = await session.scalar(
        select(Option).where(Option.meeting_id == meeting.id, Option.number == number)
    )
    if option is None:
        raise NotFound(_("There is no option %(number)s in this meeting.", number=number))
    if option.status is not OptionStatus.ACTIVE:
        raise RuleViolation(_("Option %(number)s is no longer open.", number=number))
    return option


async def merge_options(
    ctx: ServiceContext, actor: str | None, ref: str, numbers: Sequence[int], text: str
) -> int:
    """Debate phase: positions "consolidate or compromise ... to reduce the total options".

    The merged options are kept, marked as merged into the new one.
    """
    text = _check_text(text)
    unique = list(dict.fromkeys(numbers))
    if len(unique) < 2:
        raise InvalidInput(
            _("Name at least two options to merge, for example: !option merge 1 2 Text")
        )
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref, moderators_too=True)
        process.check_can_edit_options(meeting.phase)
        sources = [await _active_option(session, meeting, number) for number in unique]
        merged = await _new_option(session, ctx, meeting, person, text)
        for source in sources:
            source.status = OptionStatus.MERGED
            source.merged_into_id = merged.id
        audit(
            session,
            ctx.now(),
            person,
            "option.merge",
            meeting_ref(meeting.id),
            sources=unique,
            number=merged.number,
        )
        return merged.number


async def withdraw_option(ctx: ServiceContext, actor: str | None, ref: str, number: int) -> None:
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref, moderators_too=True)
        process.check_can_edit_options(meeting.phase)
        option = await _active_option(session, meeting, number)
        option.status = OptionStatus.WITHDRAWN
        audit(session, ctx.now(), person, "option.withdraw", meeting_ref(meeting.id), number=number)


@dataclass(frozen=True)
class OptionView:
    number: int
    text: str


async def active_options(ctx: ServiceContext, ref: str) -> list[OptionView]:
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, ref)
        return await _active_options(session, meeting)


async def _active_options(session: AsyncSession, meeting: Meeting) -> list[OptionView]:
    rows = await session.scalars(
        select(Option)
        .where(Option.meeting_id == meeting.id, Option.status == OptionStatus.ACTIVE)
        .order_by(Option.number)
    )
    return [OptionView(row.number, row.text) for row in rows]


async def _originator_present(session: AsyncSession, meeting: Meeting) -> bool:
    """Clause: "The originator of any petition must be present"."""
    if meeting.trigger is not Trigger.PETITION or meeting.originator_id is None:
        return True
    found = await session.scalar(
        select(Attendance.id).where(
            Attendance.meeting_id == meeting.id, Attendance.person_id == meeting.originator_id
        )
    )
    return found is not None


async def end_debate(ctx: ServiceContext, actor: str | None, ref: str) -> MeetingSummary:
    """Close the debate: one option is consensus at once; two or more go to the vote."""
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        options = await _active_options(session, meeting)
        status = await _quorum_status(session, ctx, meeting)
        next_phase = process.after_debate(
            meeting.phase, len(options), status.reached, await _originator_present(session, meeting)
        )
        now = ctx.now()
        meeting.phase = next_phase
        if next_phase is Phase.CONSENSUS:
            await consensus.append(
                session, meeting, options[0].text, ConsensusMethod.SINGLE_OPTION, person, now
            )
        else:
            meeting.vote_round += 1
        audit(
            session,
            now,
            person,
            "meeting.end_debate",
            meeting_ref(meeting.id),
            phase=next_phase.value,
            options=len(options),
        )
        return _summary(meeting)


async def conclude_vote(
    ctx: ServiceContext, actor: str | None, ref: str, winner: int | None
) -> MeetingSummary:
    """Record the outcome of a vote held without Harmony's ballot box (say, on paper at
    an in-person meeting): the winning option's number, or ``None`` for no clear winner.
    A vote held in Harmony's ballot box is concluded by closing the ballot instead."""
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        held = await session.scalar(
            select(BallotRound.id).where(
                BallotRound.meeting_id == meeting.id, BallotRound.number == meeting.vote_round
            )
        )
        if held is not None:
            raise RuleViolation(
                _("This vote is in Harmony's ballot box: close the ballot to count it.")
            )
        await apply_vote_outcome(session, ctx, meeting, person, winner)
        return _summary(meeting)


async def apply_vote_outcome(
    session: AsyncSession,
    ctx: ServiceContext,
    meeting: Meeting,
    person: Person | None,
    winner: int | None,
) -> None:
    """The winner (an option number) is consensus; ``None`` (no clear winner) returns
    the meeting to debate, and it will vote again."""
    next_phase = process.after_vote(meeting.phase, clear_winner=winner is not None)
    now = ctx.now()
    if winner is not None:
        option = await _active_option(session, meeting, winner)
        process.check_decision_allowed(
            (await _quorum_status(session, ctx, meeting)).reached,
            await _originator_present(session, meeting),
        )
        await consensus.append(
            session, meeting, option.text, ConsensusMethod.STAR_BALLOT, person, now
        )
    meeting.phase = next_phase
    audit(
        session,
        now,
        person,
        "meeting.conclude_vote",
        meeting_ref(meeting.id),
        round=meeting.vote_round,
        clear_winner=winner is not None,
    )


async def cancel_meeting(
    ctx: ServiceContext, actor: str | None, ref: str, reason: str
) -> MeetingSummary:
    reason = _check_text(reason)
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        process.check_can_cancel(meeting.phase)
        meeting.phase = Phase.CANCELLED
        audit(session, ctx.now(), person, "meeting.cancel", meeting_ref(meeting.id), reason=reason)
        return _summary(meeting)
