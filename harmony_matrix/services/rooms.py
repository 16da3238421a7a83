"""Who should be in which Matrix room, with what say: the register's side of the rooms.

The bot (bot/rooms.py) turns this into Matrix state; the rules stay here. The party has
one Space, which everyone on the register is invited to; each assembly has a room, which
its current members are invited to. Secretaries moderate their assembly's room; people
suspended now are muted in every assembly room ("Suspended members are not eligible to
speak, debate, or vote at any Thing or Moot"), whoever's room it is, since a public
room is open to the whole Space.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.eligibility import is_suspended
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.membership import member_ids
from harmony_matrix.services.records import audit
from harmony_matrix.storage.models import (
    Assembly,
    AssemblyMembership,
    MatrixState,
    Person,
    Role,
    Visibility,
)

#: MatrixState names.
SPACE = "space"
LEVELS_SET = "levels_set_by_bot"


@dataclass(frozen=True)
class AssemblyRoom:
    """One assembly's room as the register wants it."""

    assembly_id: int
    slug: str
    name: str
    topic: str
    #: Invite-only; else anyone in the Space may join.
    private: bool
    #: None until the bot creates it (or a secretary links one).
    room_id: str | None
    #: The Matrix IDs of its current members.
    members: frozenset[str]
    #: Its current secretaries and moderators: moderators of the room.
    moderators: frozenset[str]


@dataclass(frozen=True)
class RoomsPlan:
    party_name: str
    space_id: str | None
    #: Everyone on the register: the Space's members.
    people: frozenset[str]
    #: Suspended now: muted in every assembly room.
    muted: frozenset[str]
    assemblies: tuple[AssemblyRoom, ...]
    #: When the plan next changes by itself (a suspension or a role starts or ends).
    next_change_at: datetime | None


def room_topic(assembly: Assembly) -> str:
    return " — ".join(part.strip() for part in (assembly.subtitle, assembly.purpose) if part)


async def rooms_plan(ctx: ServiceContext) -> RoomsPlan:
    now = ctx.now()
    async with ctx.transaction() as session:
        people = list(await session.scalars(select(Person)))
        ids = {person.id: person.matrix_id for person in people}
        secretaries = await _secretaries(session, now)
        rooms = []
        for assembly in await session.scalars(select(Assembly).order_by(Assembly.id)):
            members = await member_ids(session, assembly, now)
            rooms.append(
                AssemblyRoom(
                    assembly_id=assembly.id,
                    slug=assembly.slug,
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
        space = await session.get(MatrixState, SPACE)
        changes = await _future_changes(session, people, now)
    return RoomsPlan(
        party_name=ctx.party.name,
        space_id=space.value if space else None,
        people=frozenset(ids.values()),
        muted=frozenset(
            p.matrix_id for p in people if is_suspended(p.suspended_from, p.suspended_until, now)
        ),
        assemblies=tuple(rooms),
        next_change_at=min(changes, default=None),
    )


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


async def owner_of(ctx: ServiceContext, room_id: str) -> str | None:
    """Whose room this is: an assembly's slug, ``"space"``, or None (not the party's)."""
    async with ctx.transaction() as session:
        space = await session.get(MatrixState, SPACE)
        if space is not None and space.value == room_id:
            return SPACE
        return await session.scalar(select(Assembly.slug).where(Assembly.matrix_room_id == room_id))


async def replace_room(ctx: ServiceContext, old_room_id: str, new_room_id: str) -> str | None:
    """A room was upgraded: keep its successor instead. Says whose room it was (the
    assembly's slug, or ``"space"``), None if it was nobody's."""
    async with ctx.transaction() as session:
        space = await session.get(MatrixState, SPACE)
        if space is not None and space.value == old_room_id:
            space.value = new_room_id
            owner = SPACE
        else:
            assembly = await session.scalar(
                select(Assembly).where(Assembly.matrix_room_id == old_room_id)
            )
            if assembly is None:
                return None
            assembly.matrix_room_id = new_room_id
            owner = assembly.slug
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
