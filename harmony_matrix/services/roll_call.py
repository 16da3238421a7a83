"""The meeting itself: opening it, the roll call, and its quorum."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution import process
from harmony_matrix.constitution.eligibility import is_suspended, may_vote_at_moot
from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.constitution.quorum import (
    AssemblyPresence,
    Quorum,
    moot_quorum,
    thing_quorum_reached,
)
from harmony_matrix.constitution.scheduling import check_originator_available
from harmony_matrix.errors import InvalidInput, NotAllowed, RuleViolation
from harmony_matrix.i18n import _
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import (
    meeting_by_ref,
    meeting_ref,
    person_by_matrix_id,
)
from harmony_matrix.services.meeting_announcements import announce_opened
from harmony_matrix.services.meeting_state import queue_state
from harmony_matrix.services.meetings import (
    MeetingSummary,
    acting_person,
    check_agreed,
    check_organiser,
    meeting_for_organiser,
    summary,
)
from harmony_matrix.services.membership import (
    active_population,
    member_ids,
    not_suspended,
    own_quorum_share,
    record_activity,
    standing,
)
from harmony_matrix.services.preparation import changed_since_notice, record_step, steps_done
from harmony_matrix.services.records import audit
from harmony_matrix.services.voting_rights import grant_right, open_round
from harmony_matrix.storage.models import (
    Assembly,
    Attendance,
    Meeting,
    MeetingAssembly,
    Person,
    Trigger,
    Unavailability,
)


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


async def open_meeting(ctx: ServiceContext, actor: str | None, ref: str) -> MeetingSummary:
    """Step five: the meeting is held. Opens the roll call and the discussion phase.

    Not before its announced start (less the margin), nor on a day the petition's
    originator has since said they cannot attend.
    """
    async with ctx.transaction() as session:
        meeting, person = await meeting_for_organiser(session, ctx, actor, ref)
        check_agreed(meeting)
        now = ctx.now()
        process.check_can_open(
            meeting.phase,
            await steps_done(session, meeting),
            ctx.rules,
            changed_since_notice=await changed_since_notice(session, meeting),
            now=now,
            starts_at=meeting.starts_at,
            timezone=ctx.party.timezone,
        )
        await check_originator_can_attend(session, ctx, meeting)
        links = await session.scalars(
            select(MeetingAssembly).where(MeetingAssembly.meeting_id == meeting.id)
        )
        for link in links:
            assembly = await session.get(Assembly, link.assembly_id)
            assert assembly is not None
            link.active_population = await active_population(session, assembly, ctx.rules, now)
        meeting.phase = Phase.DISCUSSION
        record_step(session, meeting, PreparationStep.HELD, person, now)
        audit(session, now, person, "meeting.open", meeting_ref(meeting.id))
        await announce_opened(session, ctx, meeting)
        await queue_state(session, ctx, meeting)
        return summary(meeting)


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


async def check_may_record_others(ctx: ServiceContext, actor: str | None, ref: str) -> None:
    """Refuse, before anyone is looked up, someone who may not record others present:
    who is on the party's register is not everybody's business."""
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        meeting = await meeting_by_ref(session, ref)
        await check_organiser(session, person, meeting.assemblies, now, moderators_too=True)


async def record_attendance(
    ctx: ServiceContext, actor: str | None, ref: str, who: str | None = None
) -> QuorumStatus:
    """Answer the roll call (``who`` None), or a secretary records someone present."""
    async with ctx.transaction() as session:
        now = ctx.now()
        person = await acting_person(session, actor, now)
        meeting = await meeting_by_ref(session, ref, lock=True)
        if who is not None and who != actor:
            await check_organiser(session, person, meeting.assemblies, now, moderators_too=True)
            attendee = await person_by_matrix_id(session, who)
            if is_suspended(attendee.suspended_from, attendee.suspended_until, now):
                # Said of the attendee: the secretary asking is not the one suspended.
                raise NotAllowed(
                    _(
                        "%(name)s is suspended, so cannot take part in the meeting.",
                        name=attendee.display_name,
                    )
                )
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
            # Only when someone arrived: answering again must not be a way to have the
            # pinned state (and the ballot's turnout in it) refreshed on demand.
            await queue_state(session, ctx, meeting)
        return await quorum_status(session, ctx, meeting)


async def meeting_quorum(ctx: ServiceContext, ref: str) -> QuorumStatus:
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, ref)
        return await quorum_status(session, ctx, meeting)


async def quorum_status(
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


async def check_originator_can_attend(
    session: AsyncSession, ctx: ServiceContext, meeting: Meeting
) -> None:
    """The meeting's day is not one the petition's originator declared, even after the
    date was set (they may declare it later; the organisers are told then)."""
    if (
        meeting.trigger is not Trigger.PETITION
        or meeting.originator_id is None
        or meeting.starts_at is None
    ):
        return
    unavailable = await session.scalars(
        select(Unavailability.day).where(Unavailability.person_id == meeting.originator_id)
    )
    day = meeting.starts_at.astimezone(ZoneInfo(ctx.party.timezone)).date()
    check_originator_available(day, set(unavailable))


async def originator_present(session: AsyncSession, meeting: Meeting, at: datetime) -> bool:
    """Clause: "The originator of any petition must be present". A suspended originator
    does not count: suspended members "are not eligible to speak, debate, or vote"."""
    if meeting.trigger is not Trigger.PETITION or meeting.originator_id is None:
        return True
    found = await session.scalar(
        select(Attendance.id)
        .join(Person, Person.id == Attendance.person_id)
        .where(
            Attendance.meeting_id == meeting.id,
            Attendance.person_id == meeting.originator_id,
            not_suspended(at),
        )
    )
    return found is not None
