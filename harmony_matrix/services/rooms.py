"""Who should be in which Matrix room, with what say: the register's side of the rooms.

The bot (bot/rooms.py) turns this into Matrix state; the rules stay here. The party has
one Space, which everyone on the register is invited to; each assembly has a room, which
its current members are invited to. Secretaries moderate their assembly's room; people
suspended now are muted in every room ("Suspended members are not eligible to speak,
debate, or vote at any Thing or Moot"), whoever's room it is, since a public room is
open to the whole Space.

A Moot meets in its assembly's room. A Thing (of Assemblies, once every involved
assembly agreed to it; a Party Thing; a Party Conference) meets in a room of its own,
invite-only, in the Space: the involved assemblies' members are invited (for a Party
Thing or Conference, every Member who is not suspended). Once the meeting reached
consensus or was cancelled, its room is closed: the record stays readable, nobody but
the bot posts, and nobody new is invited.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.eligibility import Status, is_suspended
from harmony_matrix.constitution.process import FINISHED
from harmony_matrix.constitution.scheduling import MeetingKind, kind_name
from harmony_matrix.i18n import _
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import meeting_ref
from harmony_matrix.services.meetings import awaiting_agreement
from harmony_matrix.services.membership import GENERAL_SECRETARY, member_ids, office_holders
from harmony_matrix.services.records import audit
from harmony_matrix.storage.models import (
    Assembly,
    AssemblyMembership,
    MatrixState,
    Meeting,
    Office,
    Person,
    Role,
    Visibility,
)

#: MatrixState names.
SPACE = "space"
LEVELS_SET = "levels_set_by_bot"


#: The meetings that meet in a room of their own (a Moot meets in its assembly's room).
MEETINGS_WITH_A_ROOM = (
    MeetingKind.THING_OF_ASSEMBLIES,
    MeetingKind.PARTY_THING,
    MeetingKind.PARTY_CONFERENCE,
)
#: A meeting room's name quotes this much of the question at most (the topic has it all).
NAME_QUESTION_LENGTH = 60


class RoomKind(enum.StrEnum):
    """Whose room it is."""

    ASSEMBLY = "assembly"
    MEETING = "meeting"


@dataclass(frozen=True)
class PlannedRoom:
    """One room as the register wants it: an assembly's, or a meeting's own."""

    kind: RoomKind
    #: The assembly's or the meeting's database ID.
    owner_id: int
    #: How reports name it: the assembly's slug, or the meeting's ID ("M-12").
    owner: str
    name: str
    topic: str
    #: Invite-only; else anyone in the Space may join.
    private: bool
    #: None until the bot creates it (or a secretary links one to an assembly).
    room_id: str | None
    #: The Matrix IDs of the people to invite.
    members: frozenset[str]
    #: Moderators of the room: secretaries and moderators (and, in a meeting's room, the
    #: General Secretary).
    moderators: frozenset[str]
    #: Read-only: its meeting reached consensus or was cancelled. Nobody new is invited.
    closed: bool = False


@dataclass(frozen=True)
class RoomsPlan:
    party_name: str
    space_id: str | None
    #: Everyone on the register: the Space's members.
    people: frozenset[str]
    #: Suspended now: muted in every room.
    muted: frozenset[str]
    #: The assemblies' rooms (by assembly ID), then the meetings' (by meeting ID).
    rooms: tuple[PlannedRoom, ...]
    #: When the plan next changes by itself (a suspension, a role or an office starts or
    #: ends).
    next_change_at: datetime | None

    @property
    def assemblies(self) -> tuple[PlannedRoom, ...]:
        return tuple(room for room in self.rooms if room.kind is RoomKind.ASSEMBLY)

    @property
    def meetings(self) -> tuple[PlannedRoom, ...]:
        return tuple(room for room in self.rooms if room.kind is RoomKind.MEETING)


def room_topic(assembly: Assembly) -> str:
    return " — ".join(part.strip() for part in (assembly.subtitle, assembly.purpose) if part)


def meeting_room_name(meeting: Meeting, language: str) -> str:
    """ "M-12 Thing of Assemblies: Should we ...", the question cut short on a word."""
    question = " ".join(meeting.question.split())
    if len(question) > NAME_QUESTION_LENGTH:
        cut = question[: NAME_QUESTION_LENGTH - 1]
        word_end = cut.rfind(" ")
        if word_end > NAME_QUESTION_LENGTH // 2:
            cut = cut[:word_end]
        question = cut.rstrip(" ,;:.-") + "…"
    return _(
        "%(ref)s %(kind)s: %(question)s",
        ref=meeting_ref(meeting.id),
        kind=kind_name(meeting.kind),
        question=question,
    ).render(language)


async def rooms_plan(ctx: ServiceContext) -> RoomsPlan:
    now = ctx.now()
    async with ctx.transaction() as session:
        people = list(await session.scalars(select(Person)))
        ids = {person.id: person.matrix_id for person in people}
        secretaries = await _secretaries(session, now)
        rooms = []
        assemblies = {
            assembly.id: assembly
            for assembly in await session.scalars(select(Assembly).order_by(Assembly.id))
        }
        members_of = {
            assembly.id: await member_ids(session, assembly, now)
            for assembly in assemblies.values()
        }
        for assembly in assemblies.values():
            members = members_of[assembly.id]
            rooms.append(
                PlannedRoom(
                    kind=RoomKind.ASSEMBLY,
                    owner_id=assembly.id,
                    owner=assembly.slug,
                    name=assembly.name,
                    topic=room_topic(assembly),
                    private=assembly.visibility is Visibility.PRIVATE,
                    room_id=assembly.matrix_room_id,
                    members=frozenset(ids[i] for i in members),
                    moderators=frozenset(
                        ids[i] for i in secretaries.get(assembly.id, set()) if i in members
                    ),
                )
            )
        general_secretaries = {
            person.id for person in await office_holders(session, GENERAL_SECRETARY, now)
        }
        # Members of the party who may take part in a Party Thing: not Participants, and
        # not suspended now.
        party_members = {
            p.id
            for p in people
            if p.status is Status.MEMBER
            and not is_suspended(p.suspended_from, p.suspended_until, now)
        }
        for meeting in await _meetings_with_a_room(session):
            involved = [assembly.id for assembly in meeting.assemblies]
            moderators = set(general_secretaries)
            for assembly_id in involved:
                moderators |= secretaries.get(assembly_id, set())
            if meeting.kind is MeetingKind.THING_OF_ASSEMBLIES:
                invited = set().union(*(members_of[i] for i in involved))
            else:
                invited = set(party_members)
            rooms.append(
                PlannedRoom(
                    kind=RoomKind.MEETING,
                    owner_id=meeting.id,
                    owner=meeting_ref(meeting.id),
                    name=meeting_room_name(meeting, ctx.party.default_language),
                    topic=meeting.question,
                    private=True,
                    room_id=meeting.matrix_room_id,
                    # Those who run it are in its room, even from outside the assemblies.
                    members=frozenset(ids[i] for i in invited | moderators),
                    moderators=frozenset(ids[i] for i in moderators),
                    closed=meeting.phase in FINISHED,
                )
            )
        space = await session.get(MatrixState, SPACE)
        changes = await _future_changes(session, people, now)
    return RoomsPlan(
        party_name=ctx.party.name,
        space_id=space.value if space else None,
        people=frozenset(ids.values()),
        muted=frozenset(
            p.matrix_id for p in people if is_suspended(p.suspended_from, p.suspended_until, now)
        ),
        rooms=tuple(rooms),
        next_change_at=min(changes, default=None),
    )


async def _meetings_with_a_room(session: AsyncSession) -> list[Meeting]:
    """The Things that meet in a room of their own: each unfinished one whose involved
    assemblies all agreed to it, and each finished one that has its room already (to
    close it). A Thing that finished without a room gets none: there is nothing left to
    meet about."""
    found = await session.scalars(
        select(Meeting)
        .where(
            Meeting.kind.in_(MEETINGS_WITH_A_ROOM),
            or_(Meeting.phase.not_in(FINISHED), Meeting.matrix_room_id.is_not(None)),
        )
        .order_by(Meeting.id)
    )
    return [
        meeting
        for meeting in found
        if meeting.matrix_room_id is not None or not awaiting_agreement(meeting)
    ]


async def _secretaries(session: AsyncSession, at: datetime) -> dict[int, set[int]]:
    rows = await session.execute(
        select(AssemblyMembership.assembly_id, AssemblyMembership.person_id).where(
            # The assembly's moderators moderate its room too (they keep order in debate).
            AssemblyMembership.role.in_((Role.SECRETARY, Role.MODERATOR)),
            AssemblyMembership.since <= at,
            (AssemblyMembership.until.is_(None)) | (AssemblyMembership.until > at),
        )
    )
    found: dict[int, set[int]] = {}
    for assembly_id, person_id in rows:
        found.setdefault(assembly_id, set()).add(person_id)
    return found


async def _future_changes(
    session: AsyncSession, people: list[Person], now: datetime
) -> list[datetime]:
    moments = [p.suspended_from for p in people] + [p.suspended_until for p in people]
    rows = await session.execute(select(AssemblyMembership.since, AssemblyMembership.until))
    for since, until in rows:
        moments += [since, until]
    # The General Secretary moderates the meetings' rooms.
    offices = await session.execute(
        select(Office.since, Office.until).where(Office.title == GENERAL_SECRETARY)
    )
    for since, until in offices:
        moments += [since, until]
    return [moment for moment in moments if moment is not None and moment > now]


async def record_space(ctx: ServiceContext, room_id: str) -> None:
    async with ctx.transaction() as session:
        await _set_state(session, SPACE, room_id)
        audit(session, ctx.now(), None, "matrix.space_created", room_id=room_id)


async def record_assembly_room(ctx: ServiceContext, assembly_id: int, room_id: str) -> bool:
    """Store the room the bot made for an assembly, unless one was linked meanwhile."""
    async with ctx.transaction() as session:
        result = await session.execute(
            update(Assembly)
            .where(Assembly.id == assembly_id, Assembly.matrix_room_id.is_(None))
            .values(matrix_room_id=room_id)
        )
        stored = bool(result.rowcount)  # type: ignore[attr-defined]
        if stored:
            slug = await session.scalar(select(Assembly.slug).where(Assembly.id == assembly_id))
            audit(session, ctx.now(), None, "matrix.room_created", slug or "", room_id=room_id)
        return stored


async def record_meeting_room(ctx: ServiceContext, meeting_id: int, room_id: str) -> bool:
    """Store the room the bot made for a meeting, unless it has one already."""
    async with ctx.transaction() as session:
        result = await session.execute(
            update(Meeting)
            .where(Meeting.id == meeting_id, Meeting.matrix_room_id.is_(None))
            .values(matrix_room_id=room_id)
        )
        stored = bool(result.rowcount)  # type: ignore[attr-defined]
        if stored:
            audit(
                session,
                ctx.now(),
                None,
                "matrix.room_created",
                meeting_ref(meeting_id),
                room_id=room_id,
            )
        return stored


async def owner_of(ctx: ServiceContext, room_id: str) -> str | None:
    """Whose room this is: an assembly's slug, a meeting's ID ("M-12"), ``"space"``, or
    None (not the party's)."""
    async with ctx.transaction() as session:
        space = await session.get(MatrixState, SPACE)
        if space is not None and space.value == room_id:
            return SPACE
        slug = await session.scalar(select(Assembly.slug).where(Assembly.matrix_room_id == room_id))
        if slug is not None:
            return slug
        meeting_id = await session.scalar(
            select(Meeting.id).where(Meeting.matrix_room_id == room_id).order_by(Meeting.id)
        )
        return None if meeting_id is None else meeting_ref(meeting_id)


async def replace_room(ctx: ServiceContext, old_room_id: str, new_room_id: str) -> str | None:
    """A room was upgraded: keep its successor instead. Says whose room it was (the
    assembly's slug, the meeting's ID, or ``"space"``), None if it was nobody's."""
    async with ctx.transaction() as session:
        space = await session.get(MatrixState, SPACE)
        assembly = await session.scalar(
            select(Assembly).where(Assembly.matrix_room_id == old_room_id)
        )
        meetings = list(
            await session.scalars(select(Meeting).where(Meeting.matrix_room_id == old_room_id))
        )
        if space is not None and space.value == old_room_id:
            space.value = new_room_id
            owner = SPACE
        elif assembly is not None:
            assembly.matrix_room_id = new_room_id
            owner = assembly.slug
        elif meetings:
            for meeting in meetings:
                meeting.matrix_room_id = new_room_id
            owner = meeting_ref(meetings[0].id)
        else:
            return None
        audit(
            session,
            ctx.now(),
            None,
            "matrix.room_upgraded",
            owner,
            old=old_room_id,
            new=new_room_id,
        )
        return owner


async def levels_set_by_bot(ctx: ServiceContext) -> dict[str, dict[str, list[int | None]]]:
    """The power levels the bot set, per room and user, as ``[set, before]``: so it only
    ever undoes its own changes (a mute a moderator chose stays)."""
    async with ctx.transaction() as session:
        row = await session.get(MatrixState, LEVELS_SET)
        return json.loads(row.value) if row else {}


async def record_levels_set_by_bot(
    ctx: ServiceContext, levels: dict[str, dict[str, list[int | None]]]
) -> None:
    async with ctx.transaction() as session:
        await _set_state(session, LEVELS_SET, json.dumps(levels, sort_keys=True))


async def _set_state(session: AsyncSession, name: str, value: str) -> None:
    row = await session.get(MatrixState, name)
    if row is None:
        session.add(MatrixState(name=name, value=value))
    else:
        row.value = value
