"""The register: people and assemblies, imported by the operator or added one at a time."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.eligibility import Act, check_may
from harmony_matrix.constitution.quorum import Quorum, moot_quorum
from harmony_matrix.errors import HarmonyError, InvalidInput, NotAllowed, NotFound
from harmony_matrix.i18n import _
from harmony_matrix.importers.assemblies_toml import AssemblySpec, EntryProblem
from harmony_matrix.importers.bulk import paused_gc
from harmony_matrix.importers.members_csv import (
    DEFAULT_LANGUAGE,
    PersonRow,
    RowProblem,
    check_suspension,
)
from harmony_matrix.importers.report import ImportReport, Outcome, RowReport
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import assembly_by_slug, person_by_matrix_id
from harmony_matrix.services.membership import (
    GENERAL_SECRETARY,
    active_population,
    activity_upsert,
    holds_office,
    own_quorum_share,
    roles_in,
    standing,
)
from harmony_matrix.services.records import audit
from harmony_matrix.storage.models import (
    Assembly,
    AssemblyActivity,
    AssemblyMembership,
    AutomaticMembership,
    Base,
    Office,
    Person,
    Remit,
    Role,
)


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so that nothing is kept."""


def _table(model: type[Base]) -> Table:
    """The Core table of a model, for bulk statements (no ORM objects per row)."""
    return cast(Table, model.__table__)


#: Rows per statement when writing in bulk (below every driver's parameter limit).
CHUNK = 2000
Progress = Callable[[int, int], None]


@dataclass
class _Stored:
    """A person as the register holds them, read once for the whole import."""

    id: int | None
    values: dict[str, Any]


_PERSON_FIELDS = (
    "display_name",
    "status",
    "language",
    "suspended_from",
    "suspended_until",
    "last_active_at",
)


async def import_people(
    ctx: ServiceContext,
    rows: list[PersonRow],
    problems: list[RowProblem],
    *,
    apply: bool,
    progress: Progress | None = None,
) -> ImportReport:
    """Create or update people from the register; all rows or none.

    Reads the register in a few queries, works out every change and every problem in
    memory (so a dry run, which writes nothing, reports exactly what ``--apply`` would
    do), then writes in bulk in one transaction. Fields a row does not set are left
    alone; assemblies and offices are only added (``end_role`` ends them).
    """
    report = ImportReport()
    report.rows.extend(RowReport(p.row, p.key, Outcome.ERROR, p.reason) for p in problems)
    try:
        with paused_gc():
            await _import_people(ctx, rows, report, apply=apply, progress=progress)
    except _DryRun:
        return report
    report.applied = True
    return report


async def _import_people(
    ctx: ServiceContext,
    rows: list[PersonRow],
    report: ImportReport,
    *,
    apply: bool,
    progress: Progress | None,
) -> None:
    async with ctx.transaction() as session:
        now = ctx.now()
        plan = await _plan_people(session, rows, now, report)
        report.rows.sort(key=lambda item: item.position)
        if not (apply and report.ok):
            raise _DryRun
        await _write_people(session, plan, now, progress)
        audit(
            session,
            now,
            None,
            "members.import",
            created=report.count(Outcome.CREATED),
            updated=report.count(Outcome.UPDATED),
        )


@dataclass
class _Plan:
    new_people: list[dict[str, Any]]
    changed_people: list[dict[str, Any]]
    #: (matrix_id, assembly_id, role) to add; the person's ID may not exist yet.
    new_roles: list[tuple[str, int, Role]]
    reopened_roles: list[int]
    new_offices: list[tuple[str, str]]
    #: (matrix_id, assembly_id, last active)
    activity: list[tuple[str, int, datetime]]
    people: dict[str, _Stored]


async def _plan_people(
    session: AsyncSession, rows: list[PersonRow], now: datetime, report: ImportReport
) -> _Plan:
    people_table = _table(Person)
    people: dict[str, _Stored] = {
        row.matrix_id: _Stored(row.id, {key: getattr(row, key) for key in _PERSON_FIELDS})
        for row in await session.execute(
            select(
                people_table.c.id,
                people_table.c.matrix_id,
                *[people_table.c[key] for key in _PERSON_FIELDS],
            )
        )
    }
    assemblies: dict[str, int] = {}
    automatic: list[int] = []
    for assembly_id, slug, rule in await session.execute(
        select(Assembly.id, Assembly.slug, Assembly.automatic_membership)
    ):
        assemblies[slug] = assembly_id
        if rule != AutomaticMembership.NONE:
            automatic.append(assembly_id)
    roles: dict[tuple[int, int, str], tuple[int, datetime | None]] = {
        (person_id, assembly_id, str(role)): (membership_id, until)
        for membership_id, person_id, assembly_id, role, until in await session.execute(
            select(
                AssemblyMembership.id,
                AssemblyMembership.person_id,
                AssemblyMembership.assembly_id,
                AssemblyMembership.role,
                AssemblyMembership.until,
            )
        )
    }
    offices = set(
        (person_id, title)
        for person_id, title in await session.execute(
            select(Office.person_id, Office.title).where(Office.until.is_(None))
        )
    )
    register = _Register(
        assemblies=assemblies,
        automatic=automatic,
        roles=roles,
        offices=offices,
        activity={
            (person_id, assembly_id): at
            for person_id, assembly_id, at in await session.execute(
                select(
                    AssemblyActivity.person_id,
                    AssemblyActivity.assembly_id,
                    AssemblyActivity.last_active_at,
                )
            )
        },
    )
    plan = _Plan([], [], [], [], [], [], people)
    for row in rows:
        try:
            outcome = _plan_row(row, now, plan, register)
        except HarmonyError as error:
            report.rows.append(RowReport(row.row, row.matrix_id, Outcome.ERROR, error.message))
            continue
        report.rows.append(RowReport(row.row, row.matrix_id, outcome))
    return plan


@dataclass(frozen=True)
class _Register:
    """What the database holds, read in one query per table before any row is planned."""

    assemblies: dict[str, int]
    automatic: list[int]
    #: (person, assembly, role) -> (membership ID, until)
    roles: dict[tuple[int, int, str], tuple[int, datetime | None]]
    #: (person, title) of offices held now
    offices: set[tuple[int, str]]
    #: (person, assembly) -> last active
    activity: dict[tuple[int, int], datetime]


def _plan_row(row: PersonRow, now: datetime, plan: _Plan, register: _Register) -> Outcome:
    stored = plan.people.get(row.matrix_id)
    wanted: dict[str, Any] = {"display_name": row.display_name, "status": row.status, **row.fields}
    if stored is None:
        values = {
            "language": DEFAULT_LANGUAGE,
            "suspended_from": None,
            "suspended_until": None,
            "last_active_at": row.last_active,
            **wanted,
        }
        check_suspension(values["suspended_from"], values["suspended_until"])
        outcome = Outcome.CREATED
    else:
        values = {**stored.values, **wanted}
        check_suspension(values["suspended_from"], values["suspended_until"])
        changed = any(stored.values[key] != value for key, value in wanted.items())
        outcome = Outcome.UPDATED if changed else Outcome.UNCHANGED
        if row.last_active is not None:
            values["last_active_at"] = row.last_active
    person_id = stored.id if stored is not None else None
    touched = False
    listed: list[int] = []
    for slug, role in dict.fromkeys(row.assemblies):
        assembly_id = register.assemblies.get(slug)
        if assembly_id is None:
            raise InvalidInput(
                _("The assembly “%(slug)s” does not exist; import assemblies first.", slug=slug)
            )
        listed.append(assembly_id)
        held = (
            register.roles.get((person_id, assembly_id, str(role)))
            if person_id is not None
            else None
        )
        if held is None:
            plan.new_roles.append((row.matrix_id, assembly_id, role))
            touched = True
        elif held[1] is not None:
            plan.reopened_roles.append(held[0])
            touched = True
    for title in dict.fromkeys(row.offices):
        if person_id is None or (person_id, title) not in register.offices:
            plan.new_offices.append((row.matrix_id, title))
            touched = True
    if row.last_active is not None:
        # Written only where it changes: a re-import of the same file writes nothing.
        for assembly_id in dict.fromkeys([*listed, *register.automatic]):
            if person_id is None or register.activity.get((person_id, assembly_id)) != (
                row.last_active
            ):
                plan.activity.append((row.matrix_id, assembly_id, row.last_active))
    if stored is None:
        plan.new_people.append({"matrix_id": row.matrix_id, "created_at": now, **values})
        plan.people[row.matrix_id] = _Stored(None, values)
        return outcome
    if outcome is Outcome.UPDATED or values["last_active_at"] != stored.values["last_active_at"]:
        plan.changed_people.append({"b_id": stored.id, **values})
    if touched and outcome is Outcome.UNCHANGED:
        return Outcome.UPDATED
    return outcome


async def _write_people(
    session: AsyncSession, plan: _Plan, now: datetime, progress: Progress | None
) -> None:
    people = _table(Person)
    total = (
        len(plan.new_people)
        + len(plan.changed_people)
        + len(plan.new_roles)
        + len(plan.reopened_roles)
        + len(plan.new_offices)
        + len(plan.activity)
    )
    done = 0

    async def run(
        statement: Any, params: list[dict[str, Any]], *, returning: bool = False
    ) -> list[Any]:
        """Execute many, a chunk at a time (one statement per chunk, never per row)."""
        nonlocal done
        found: list[Any] = []
        for start in range(0, len(params), CHUNK):
            chunk = params[start : start + CHUNK]
            result = await session.execute(statement, chunk)
            if returning:
                found.extend(result.all())
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        return found

    ids = {
        row.matrix_id: row.id
        for row in await run(
            insert(people).returning(people.c.id, people.c.matrix_id),
            plan.new_people,
            returning=True,
        )
    }
    for matrix_id, stored in plan.people.items():
        if stored.id is not None:
            ids[matrix_id] = stored.id
    await run(
        update(people)
        .where(people.c.id == bindparam("b_id"))
        .values({key: bindparam(key) for key in _PERSON_FIELDS}),
        plan.changed_people,
    )
    memberships = _table(AssemblyMembership)
    await run(
        insert(memberships),
        [
            {
                "person_id": ids[matrix_id],
                "assembly_id": assembly_id,
                "role": role,
                "since": now,
                "until": None,
            }
            for matrix_id, assembly_id, role in plan.new_roles
        ],
    )
    await run(
        update(memberships).where(memberships.c.id == bindparam("b_id")).values(until=None),
        [{"b_id": membership_id} for membership_id in plan.reopened_roles],
    )
    await run(
        insert(_table(Office)),
        [
            {"person_id": ids[matrix_id], "title": title, "since": now, "until": None}
            for matrix_id, title in plan.new_offices
        ],
    )
    await run(
        activity_upsert(session),
        [
            {"person_id": ids[matrix_id], "assembly_id": assembly_id, "last_active_at": at}
            for matrix_id, assembly_id, at in plan.activity
        ],
    )


async def import_assemblies(
    ctx: ServiceContext,
    specs: list[AssemblySpec],
    problems: list[EntryProblem],
    *,
    apply: bool,
) -> ImportReport:
    """Create or update assemblies (matched by slug); all entries or none."""
    report = ImportReport(unit="entry")
    report.rows.extend(RowReport(p.entry, p.key, Outcome.ERROR, p.reason) for p in problems)
    try:
        async with ctx.transaction() as session:
            now = ctx.now()
            saved: dict[str, tuple[Assembly, Outcome]] = {}
            taken = await _references(session, specs)
            # New references are written after a provisional one each, so that
            # references can move between assemblies in one file (a unique column).
            references: list[tuple[Assembly, str]] = []
            for spec in specs:
                try:
                    _check_reference(spec, taken)
                    saved[spec.slug] = await _upsert_assembly(
                        session, spec, ctx, now, taken, references
                    )
                except HarmonyError as error:
                    report.rows.append(
                        RowReport(spec.entry, spec.slug, Outcome.ERROR, error.message)
                    )
            await session.flush()
            for assembly, reference in references:
                assembly.reference = reference
            await session.flush()
            # Links to other assemblies are resolved once every entry exists.
            for spec in specs:
                if spec.slug not in saved:
                    continue
                assembly, outcome = saved[spec.slug]
                try:
                    changed = await _link_assembly(session, assembly, spec)
                except HarmonyError as error:
                    report.rows.append(
                        RowReport(spec.entry, spec.slug, Outcome.ERROR, error.message)
                    )
                    continue
                if changed and outcome is Outcome.UNCHANGED:
                    outcome = Outcome.UPDATED
                report.rows.append(RowReport(spec.entry, spec.slug, outcome))
            report.rows.sort(key=lambda item: item.position)
            if not (apply and report.ok):
                raise _DryRun
            audit(session, now, None, "assemblies.import", slugs=sorted(saved))
    except _DryRun:
        return report
    report.applied = True
    return report


async def _references(session: AsyncSession, specs: list[AssemblySpec]) -> dict[str, str]:
    """Every reference the assemblies will hold once the file is imported, and whose it
    is: the database's, minus those the file gives another, plus the file's."""
    owners = {
        reference: slug
        for slug, reference in await session.execute(select(Assembly.slug, Assembly.reference))
    }
    moving = {spec.slug for spec in specs if spec.reference is not None}
    kept = {reference: slug for reference, slug in owners.items() if slug not in moving}
    return kept


def _check_reference(spec: AssemblySpec, taken: dict[str, str]) -> None:
    if spec.reference is None:
        return
    owner = taken.get(spec.reference)
    if owner is not None and owner != spec.slug:
        raise InvalidInput(
            _(
                "The reference “%(reference)s” is already the reference of “%(slug)s”.",
                reference=spec.reference,
                slug=owner,
            )
        )
    taken[spec.reference] = spec.slug


async def _upsert_assembly(
    session: AsyncSession,
    spec: AssemblySpec,
    ctx: ServiceContext,
    now: datetime,
    taken: dict[str, str],
    references: list[tuple[Assembly, str]],
) -> tuple[Assembly, Outcome]:
    assembly = await session.scalar(select(Assembly).where(Assembly.slug == spec.slug))
    wanted = {
        "name": spec.name,
        "subtitle": spec.subtitle,
        "about": spec.about,
        "purpose": spec.purpose,
        "composition": spec.composition,
        "kind": spec.kind,
        "visibility": spec.visibility,
        "is_open": spec.is_open,
        "automatic_membership": spec.automatic_membership,
        "own_quorum_percent": spec.own_quorum_percent,
    }
    if assembly is None:
        # A provisional reference; the real one is set once every entry is saved.
        assembly = Assembly(
            slug=spec.slug, reference=_provisional_reference(), created_at=now, **wanted
        )
        session.add(assembly)
        await session.flush()
        reference = spec.reference
        if reference is None:
            local = now.astimezone(ZoneInfo(ctx.party.timezone))
            reference = f"{ctx.party.reference_prefix}-ASSE-{local:%Y}-{local:%m}-{assembly.id}"
            if reference in taken:
                raise InvalidInput(
                    _(
                        "The new reference %(reference)s is already the reference of "
                        "“%(slug)s”; give this entry a reference.",
                        reference=reference,
                        slug=taken[reference],
                    )
                )
            taken[reference] = spec.slug
        references.append((assembly, reference))
        return assembly, Outcome.CREATED
    if spec.reference is not None:
        wanted["reference"] = spec.reference
    changed = {key: value for key, value in wanted.items() if getattr(assembly, key) != value}
    for key, value in changed.items():
        setattr(assembly, key, value)
    if "reference" in changed:
        references.append((assembly, str(changed["reference"])))
        assembly.reference = _provisional_reference()
    return assembly, Outcome.UPDATED if changed else Outcome.UNCHANGED


def _provisional_reference() -> str:
    # Unique and within the column's 64 characters (a slug is up to 80: "new:" + slug
    # did not fit, which PostgreSQL refused and SQLite kept).
    return f"new:{uuid.uuid4().hex}"


async def _link_assembly(session: AsyncSession, assembly: Assembly, spec: AssemblySpec) -> bool:
    changed = False
    parent_id: int | None = None
    if spec.parent is not None:
        parent = await _linked(session, spec.parent, "parent")
        ancestor: Assembly | None = parent
        while ancestor is not None:
            if ancestor.id == assembly.id:
                raise InvalidInput(
                    _("“%(slug)s” cannot be inside itself (parent loop).", slug=spec.slug)
                )
            ancestor = (
                await session.get(Assembly, ancestor.parent_id) if ancestor.parent_id else None
            )
        parent_id = parent.id
    if assembly.parent_id != parent_id:
        assembly.parent_id = parent_id
        changed = True
    existing = {
        remit.topic: remit
        for remit in await session.scalars(select(Remit).where(Remit.assembly_id == assembly.id))
    }
    for remit_spec in spec.remits:
        fallback = (
            await _linked(session, remit_spec.fallback, "fallback") if remit_spec.fallback else None
        )
        fallback_id = fallback.id if fallback else None
        remit = existing.pop(remit_spec.topic, None)
        if remit is None:
            taken = await session.scalar(select(Remit).where(Remit.topic == remit_spec.topic))
            if taken is not None:
                raise InvalidInput(
                    _(
                        "The remit “%(topic)s” already belongs to another assembly.",
                        topic=remit_spec.topic,
                    )
                )
            session.add(
                Remit(
                    assembly_id=assembly.id,
                    topic=remit_spec.topic,
                    fallback_assembly_id=fallback_id,
                )
            )
            changed = True
        elif remit.fallback_assembly_id != fallback_id:
            remit.fallback_assembly_id = fallback_id
            changed = True
    for stale in existing.values():
        await session.delete(stale)
        changed = True
    await session.flush()
    return changed


async def _linked(session: AsyncSession, slug: str, field: str) -> Assembly:
    try:
        return await assembly_by_slug(session, slug)
    except NotFound as error:
        raise InvalidInput(
            _("The %(field)s assembly “%(slug)s” does not exist.", field=field, slug=slug)
        ) from error


@dataclass(frozen=True)
class AssemblyQuorum:
    slug: str
    name: str
    reference: str
    quorum: Quorum


async def assembly_quorum(ctx: ServiceContext, slug: str) -> AssemblyQuorum:
    """The quorum an Assembly Moot of this assembly needs today."""
    async with ctx.transaction() as session:
        assembly = await assembly_by_slug(session, slug)
        population = await active_population(session, assembly, ctx.rules, ctx.now())
        share = own_quorum_share(assembly)
        return AssemblyQuorum(
            slug=assembly.slug,
            name=assembly.name,
            reference=assembly.reference,
            quorum=moot_quorum(population, share, ctx.rules),
        )


async def _register_authority(
    session: AsyncSession, actor: str | None, slug: str, now: datetime
) -> tuple[Person | None, Assembly, bool, bool]:
    """Who changes an assembly's roles: the acting person (None for the operator), the
    assembly, and whether they act as General Secretary (the operator does) or as one of
    its secretaries. A suspended person may not act at all."""
    acting = await person_by_matrix_id(session, actor) if actor is not None else None
    if acting is not None:
        check_may(standing(acting, now), Act.SPEAK)
    assembly = await assembly_by_slug(session, slug)
    general = acting is None or await holds_office(session, acting.id, GENERAL_SECRETARY, now)
    secretary = acting is not None and Role.SECRETARY in await roles_in(
        session, acting.id, assembly.id, now
    )
    return acting, assembly, general, secretary


async def add_to_assembly(
    ctx: ServiceContext, actor: str | None, slug: str, matrix_id: str, role: Role = Role.MEMBER
) -> bool:
    """A secretary (or the General Secretary) adds a registered person to the assembly.

    Returns False when the person already held that role. Only the General Secretary
    (or the operator) may appoint a secretary.
    """
    async with ctx.transaction() as session:
        now = ctx.now()
        acting, assembly, general, secretary = await _register_authority(session, actor, slug, now)
        if not (general or (secretary and role is not Role.SECRETARY)):
            raise NotAllowed(
                _(
                    "Only a secretary of %(assembly)s or the General Secretary can add "
                    "members, and only the General Secretary can appoint a secretary.",
                    assembly=assembly.name,
                )
            )
        person = await person_by_matrix_id(session, matrix_id)
        if role in await roles_in(session, person.id, assembly.id, now):
            return False
        session.add(
            AssemblyMembership(
                person_id=person.id, assembly_id=assembly.id, role=role, since=now, until=None
            )
        )
        audit(
            session,
            now,
            acting,
            "assembly.add",
            assembly.slug,
            person=person.matrix_id,
            role=role.value,
        )
        return True


async def end_role(
    ctx: ServiceContext,
    actor: str | None,
    matrix_id: str,
    slug: str,
    role: Role | None,
    on: datetime,
) -> list[Role]:
    """End a person's role in an assembly on a date (``role=None``: every role, that is
    the membership). The history stays: the role's ``until`` is set, nothing is deleted.

    The same people may do this as may add members (``add_to_assembly``). Returns the
    roles ended; refuses a role the person does not hold on that date.
    """
    async with ctx.transaction() as session:
        now = ctx.now()
        acting, assembly, general, secretary = await _register_authority(session, actor, slug, now)
        if not (general or (secretary and role not in (Role.SECRETARY, None))):
            raise NotAllowed(
                _(
                    "Only a secretary of %(assembly)s or the General Secretary can end a "
                    "member's role. Only the General Secretary can end a secretary's role.",
                    assembly=assembly.name,
                )
            )
        person = await person_by_matrix_id(session, matrix_id)
        query = select(AssemblyMembership).where(
            AssemblyMembership.person_id == person.id,
            AssemblyMembership.assembly_id == assembly.id,
            or_(AssemblyMembership.until.is_(None), AssemblyMembership.until > on),
        )
        if role is not None:
            query = query.where(AssemblyMembership.role == role)
        held = list(await session.scalars(query.order_by(AssemblyMembership.role)))
        if not held:
            raise InvalidInput(
                _(
                    "%(who)s has no current role %(role)s in %(assembly)s on that date.",
                    who=person.matrix_id,
                    role=role.value if role is not None else "",
                    assembly=assembly.slug,
                )
                if role is not None
                else _(
                    "%(who)s is not listed in %(assembly)s on that date.",
                    who=person.matrix_id,
                    assembly=assembly.slug,
                )
            )
        for membership in held:
            if on < membership.since:
                raise InvalidInput(
                    _(
                        "The role %(role)s in %(assembly)s began on %(since)s; it cannot end "
                        "before it began.",
                        role=membership.role.value,
                        assembly=assembly.slug,
                        since=membership.since.date().isoformat(),
                    )
                )
            membership.until = on
        ended = [membership.role for membership in held]
        audit(
            session,
            now,
            acting,
            "assembly.end_role",
            assembly.slug,
            person=person.matrix_id,
            roles=[item.value for item in ended],
            on=on.isoformat(),
        )
        return ended
