"""What a Matrix room stands for, as commands see it: an assembly's room, the meetings
held in it.

An assembly's Moots run in its room (``Assembly.matrix_room_id``); a meeting with a room
of its own (a Thing) has ``Meeting.matrix_room_id``. A command sent in a room may so
leave out the assembly or the meeting it is about.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.process import Phase
from harmony_matrix.constitution.quorum import Quorum, moot_quorum
from harmony_matrix.constitution.scheduling import MeetingKind
from harmony_matrix.errors import InvalidInput, NotFound, RuleViolation
from harmony_matrix.i18n import _, list_of
from harmony_matrix.services import consensus, roll_call
from harmony_matrix.services.consensus import GENESIS, ConsensusEntry
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import assembly_by_slug, meeting_by_ref, meeting_ref
from harmony_matrix.services.meetings import acting_person, check_organiser
from harmony_matrix.services.membership import active_population, own_quorum_share
from harmony_matrix.services.records import audit
from harmony_matrix.storage.models import Assembly, Meeting, MeetingAssembly

#: The phases in which a meeting has a roll call and so a quorum to reach.
RUNNING = (Phase.DISCUSSION, Phase.DEBATE, Phase.VOTE)


@dataclass(frozen=True)
class AssemblyInfo:
    slug: str
    name: str
    reference: str
    subtitle: str
    purpose: str
    #: The quorum an Assembly Moot needs today, with the active population it counts.
    quorum: Quorum


async def _assembly_in_room(session: AsyncSession, room_id: str) -> Assembly | None:
    return await session.scalar(select(Assembly).where(Assembly.matrix_room_id == room_id))


async def _info(session: AsyncSession, ctx: ServiceContext, assembly: Assembly) -> AssemblyInfo:
    population = await active_population(session, assembly, ctx.rules, ctx.now())
    return AssemblyInfo(
        slug=assembly.slug,
        name=assembly.name,
        reference=assembly.reference,
        subtitle=assembly.subtitle,
        purpose=assembly.purpose,
        quorum=moot_quorum(population, own_quorum_share(assembly), ctx.rules),
    )


async def assembly_of_room(ctx: ServiceContext, room_id: str) -> AssemblyInfo | None:
    """The assembly whose room this is, with its quorum today; None for any other room."""
    async with ctx.transaction() as session:
        assembly = await _assembly_in_room(session, room_id)
        return None if assembly is None else await _info(session, ctx, assembly)


@dataclass(frozen=True)
class RoomLink:
    slug: str
    name: str
    reference: str
    room_id: str
    #: The room the assembly had before, if it had another one.
    previous_room_id: str | None
    #: False when the room was already this assembly's.
    changed: bool


async def link_room(ctx: ServiceContext, actor: str | None, slug: str, room_id: str) -> RoomLink:
    """Make ``room_id`` the assembly's room (a room is an assembly's at most).

    A secretary of the assembly or the General Secretary (None: the operator) may; a
    room that is already another assembly's, or a meeting's own, is refused. The
    assembly's earlier room, if any, is no longer its room.
    """
    now = ctx.now()
    async with ctx.transaction() as session:
        person = await acting_person(session, actor, now)
        assembly = await assembly_by_slug(session, slug)
        await check_organiser(session, person, [assembly], now)
        holder = await _assembly_in_room(session, room_id)
        if holder is not None and holder.id != assembly.id:
            raise RuleViolation(
                _(
                    "This room is already the room of %(assembly)s; a room belongs to one "
                    "assembly only.",
                    assembly=holder.name,
                )
            )
        meeting_id = await session.scalar(
            select(Meeting.id).where(Meeting.matrix_room_id == room_id).limit(1)
        )
        if meeting_id is not None:
            # Its Thing's commands, record and closing would mix with the assembly's.
            raise RuleViolation(
                _(
                    "This room is the room of meeting %(ref)s; an assembly needs a room "
                    "of its own.",
                    ref=meeting_ref(meeting_id),
                )
            )
        previous = assembly.matrix_room_id
        changed = previous != room_id
        if changed:
            assembly.matrix_room_id = room_id
            audit(
                session,
                now,
                person,
                "assembly.link_room",
                assembly.slug,
                room=room_id,
                previous=previous,
            )
        return RoomLink(
            slug=assembly.slug,
            name=assembly.name,
            reference=assembly.reference,
            room_id=room_id,
            previous_room_id=previous if changed else None,
            changed=changed,
        )


async def meetings_in_room(
    session: AsyncSession, room_id: str, phases: tuple[Phase, ...]
) -> list[Meeting]:
    """The meetings in these phases held in the room: those with the room as their own,
    and the Moots of the assembly whose room it is (they have no room of their own)."""
    moots_here = (
        select(MeetingAssembly.meeting_id)
        .join(Assembly, Assembly.id == MeetingAssembly.assembly_id)
        .where(Assembly.matrix_room_id == room_id)
    )
    found = await session.scalars(
        select(Meeting)
        .where(
            Meeting.phase.in_(phases),
            or_(
                Meeting.matrix_room_id == room_id,
                and_(
                    Meeting.matrix_room_id.is_(None),
                    Meeting.kind == MeetingKind.ASSEMBLY_MOOT,
                    Meeting.id.in_(moots_here),
                ),
            ),
        )
        .order_by(Meeting.id)
    )
    return list(found)


UNFINISHED = (Phase.PLANNING, Phase.DISCUSSION, Phase.DEBATE, Phase.VOTE)


async def meeting_here(
    ctx: ServiceContext, room_id: str, ref: str | None, phases: tuple[Phase, ...] = UNFINISHED
) -> str:
    """The ID of the meeting a command in this room means: ``ref`` when given (checked
    to exist), else the one meeting in ``phases`` held in the room.

    "An omitted ID means the one unfinished meeting of this room; if there are several,
    the bot asks which" (DESIGN.md section 7).
    """
    async with ctx.transaction() as session:
        if ref is not None:
            return meeting_ref((await meeting_by_ref(session, ref)).id)
        found = await meetings_in_room(session, room_id, phases)
        if len(found) == 1:
            return meeting_ref(found[0].id)
        if found:
            raise InvalidInput(
                _(
                    "Several meetings are under way in this room (%(refs)s): give the ID "
                    "of the one you mean.",
                    refs=list_of(meeting_ref(meeting.id) for meeting in found),
                )
            )
        raise InvalidInput(
            _("No meeting is under way in this room: give the meeting's ID, like M-12.")
        )


async def room_quorum(
    ctx: ServiceContext, room_id: str, ref: str | None = None
) -> roll_call.QuorumStatus | AssemblyInfo:
    """The quorum someone in this room asks about.

    With a meeting ID: that meeting's roll call. Without: the one meeting under way in
    the room (its roll call is open), else the quorum the room's assembly needs. Several
    meetings under way: the caller is asked which; a room of neither: NotFound.
    """
    if ref is not None:
        return await roll_call.meeting_quorum(ctx, ref)
    async with ctx.transaction() as session:
        running = await meetings_in_room(session, room_id, RUNNING)
        if len(running) == 1:
            return await roll_call.quorum_status(session, ctx, running[0])
        if running:
            raise InvalidInput(
                _(
                    "Several meetings are under way in this room (%(refs)s): give the ID "
                    "of the one you mean.",
                    refs=list_of(meeting_ref(meeting.id) for meeting in running),
                )
            )
        assembly = await _assembly_in_room(session, room_id)
        if assembly is None:
            raise NotFound(
                _(
                    "This room is not an assembly's room and no meeting is under way in it: "
                    "give a meeting ID."
                )
            )
        return await _info(session, ctx, assembly)


@dataclass(frozen=True)
class ConsensusDigest:
    #: The assembly the entries are about; None for the whole record.
    assembly: str | None
    #: The latest entries, newest first.
    latest: tuple[ConsensusEntry, ...]
    #: How many entries are about the assembly (the whole record: ``count``).
    matching: int
    #: The whole record: its entry count and head hash (:data:`GENESIS` when empty).
    count: int
    head: str


async def consensus_digest(
    ctx: ServiceContext, room_id: str | None, slug: str | None = None, limit: int = 5
) -> ConsensusDigest:
    """The latest entries of the record of consensus, for the assembly named by
    ``slug`` (slug, reference or name), else for the room's assembly, else all of them;
    with the whole record's count and head hash, to compare with published ones."""
    assembly: Assembly | None = None
    async with ctx.transaction() as session:
        if slug is not None:
            assembly = await assembly_by_slug(session, slug)
        elif room_id is not None:
            assembly = await _assembly_in_room(session, room_id)
    entries = await consensus.list_consensus(ctx)
    chosen = [e for e in entries if assembly is None or assembly.slug in e.assemblies]
    return ConsensusDigest(
        assembly=None if assembly is None else assembly.name,
        latest=tuple(reversed(chosen[-limit:])) if limit > 0 else (),
        matching=len(chosen),
        count=len(entries),
        head=entries[-1].hash if entries else GENESIS,
    )
