"""Who belongs to an assembly, who is active in it, and who holds which role."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.eligibility import Standing, Status, is_suspended
from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.storage.models import (
    Assembly,
    AssemblyActivity,
    AssemblyMembership,
    AutomaticMembership,
    Office,
    Person,
    Role,
)

GENERAL_SECRETARY = "general_secretary"


def standing(person: Person, at: datetime) -> Standing:
    return Standing(
        status=person.status,
        suspended=is_suspended(person.suspended_from, person.suspended_until, at),
    )


def not_suspended(at: datetime) -> ColumnElement[bool]:
    """SQL for "this person is not suspended at ``at``" (mirrors ``is_suspended``)."""
    return or_(
        Person.suspended_from.is_(None),
        Person.suspended_from > at,
        and_(Person.suspended_until.is_not(None), Person.suspended_until <= at),
    )


def _current(at: datetime) -> ColumnElement[bool]:
    return and_(
        AssemblyMembership.since <= at,
        or_(AssemblyMembership.until.is_(None), AssemblyMembership.until > at),
    )


async def member_ids(session: AsyncSession, assembly: Assembly, at: datetime) -> set[int]:
    """Everyone in the assembly at ``at``: listed members plus its automatic rule."""
    listed = await session.scalars(
        select(AssemblyMembership.person_id).where(
            AssemblyMembership.assembly_id == assembly.id, _current(at)
        )
    )
    ids = set(listed)
    if assembly.automatic_membership is AutomaticMembership.EVERYONE:
        ids |= set(await session.scalars(select(Person.id)))
    elif assembly.automatic_membership is AutomaticMembership.MEMBERS:
        ids |= set(await session.scalars(select(Person.id).where(Person.status == Status.MEMBER)))
    return ids


async def eligible_member_ids(session: AsyncSession, assembly: Assembly, at: datetime) -> set[int]:
    """The assembly's members who are not suspended."""
    everyone = await member_ids(session, assembly, at)
    allowed = set(await session.scalars(select(Person.id).where(not_suspended(at))))
    return everyone & allowed


async def active_population(
    session: AsyncSession, assembly: Assembly, rules: Rules, at: datetime
) -> int:
    """Interpretation 1: non-suspended members active in the assembly within
    ``rules.active_days`` days (spoke, attended or voted); 0 days counts them all."""
    eligible = await eligible_member_ids(session, assembly, at)
    if rules.active_days == 0:
        return len(eligible)
    since = at - timedelta(days=rules.active_days)
    active = set(
        await session.scalars(
            select(AssemblyActivity.person_id).where(
                AssemblyActivity.assembly_id == assembly.id,
                AssemblyActivity.last_active_at >= since,
            )
        )
    )
    return len(eligible & active)


async def record_activity(
    session: AsyncSession, person_id: int, assembly_ids: Iterable[int], at: datetime
) -> None:
    """Remember that the person took part in these assemblies now (an upsert)."""
    rows = [
        {"person_id": person_id, "assembly_id": assembly_id, "last_active_at": at}
        for assembly_id in set(assembly_ids)
    ]
    if not rows:
        return
    await session.execute(activity_upsert(session), rows)


def activity_upsert(session: AsyncSession) -> Any:
    """An INSERT of assembly activity that updates the date of a pair already there;
    executed with a list of rows (person_id, assembly_id, last_active_at)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(cast(Table, AssemblyActivity.__table__))
    return statement.on_conflict_do_update(
        index_elements=["person_id", "assembly_id"],
        set_={"last_active_at": statement.excluded.last_active_at},
    )


async def roles_in(
    session: AsyncSession, person_id: int, assembly_id: int, at: datetime
) -> set[Role]:
    rows = await session.scalars(
        select(AssemblyMembership.role).where(
            AssemblyMembership.person_id == person_id,
            AssemblyMembership.assembly_id == assembly_id,
            _current(at),
        )
    )
    return set(rows)


async def holds_office(session: AsyncSession, person_id: int, title: str, at: datetime) -> bool:
    found = await session.scalar(
        select(Office.id).where(
            Office.person_id == person_id,
            Office.title == title,
            Office.since <= at,
            or_(Office.until.is_(None), Office.until > at),
        )
    )
    return found is not None


async def office_holders(session: AsyncSession, title: str, at: datetime) -> list[Person]:
    rows = await session.scalars(
        select(Person)
        .join(Office, Office.person_id == Person.id)
        .where(
            Office.title == title,
            Office.since <= at,
            or_(Office.until.is_(None), Office.until > at),
        )
    )
    return list(rows)


async def non_suspended_member_count(session: AsyncSession, at: datetime) -> int:
    """The Membership for a petition: Members (not Participants) who are not suspended."""
    rows = await session.scalars(
        select(Person.id).where(Person.status == Status.MEMBER, not_suspended(at))
    )
    return len(list(rows))


def own_quorum_share(assembly: Assembly) -> Fraction | None:
    """The quorum the assembly set for itself, as a share of its active population."""
    if assembly.own_quorum_percent is None:
        return None
    return Fraction(assembly.own_quorum_percent, 100)
