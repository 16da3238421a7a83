"""The register: people and assemblies, imported by the operator or added one at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.eligibility import Act, check_may
from harmony_matrix.constitution.quorum import Quorum, moot_quorum
from harmony_matrix.errors import HarmonyError, InvalidInput, NotAllowed, NotFound
from harmony_matrix.i18n import _
from harmony_matrix.importers.assemblies_toml import AssemblySpec, EntryProblem
from harmony_matrix.importers.members_csv import PersonRow, RowProblem
from harmony_matrix.importers.report import ImportReport, Outcome, RowReport
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import assembly_by_slug, person_by_matrix_id
from harmony_matrix.services.membership import (
    GENERAL_SECRETARY,
    active_population,
    holds_office,
    own_quorum_share,
    record_activity,
    roles_in,
    standing,
)
from harmony_matrix.services.records import audit
from harmony_matrix.storage.models import (
    Assembly,
    AssemblyMembership,
    Office,
    Person,
    Remit,
    Role,
)


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so that nothing is kept."""


async def import_people(
    ctx: ServiceContext, rows: list[PersonRow], problems: list[RowProblem], *, apply: bool
) -> ImportReport:
    """Create or update people from the register; all rows or none.

    A dry run (``apply=False``) does everything in a transaction it then rolls back, so
    its report is exactly what ``--apply`` would do.
    """
    report = ImportReport()
    report.rows.extend(RowReport(p.row, p.key, Outcome.ERROR, p.reason) for p in problems)
    try:
        async with ctx.transaction() as session:
            now = ctx.now()
            for row in rows:
                try:
                    outcome = await _upsert_person(session, row, now)
                except HarmonyError as error:
                    report.rows.append(
                        RowReport(row.row, row.matrix_id, Outcome.ERROR, error.message)
                    )
                    continue
                report.rows.append(RowReport(row.row, row.matrix_id, outcome))
            report.rows.sort(key=lambda item: item.position)
            if not (apply and report.ok):
                raise _DryRun
            audit(
                session,
                now,
                None,
                "members.import",
                created=report.count(Outcome.CREATED),
                updated=report.count(Outcome.UPDATED),
            )
    except _DryRun:
        return report
    report.applied = True
    return report


async def _upsert_person(session: AsyncSession, row: PersonRow, now: datetime) -> Outcome:
    person = await session.scalar(select(Person).where(Person.matrix_id == row.matrix_id))
    wanted = {
        "display_name": row.display_name,
        "status": row.status,
        "language": row.language,
        "suspended_from": row.suspended_from,
        "suspended_until": row.suspended_until,
    }
    if person is None:
        person = Person(matrix_id=row.matrix_id, created_at=now, last_active_at=None, **wanted)
        session.add(person)
        await session.flush()
        outcome = Outcome.CREATED
    else:
        changed = {key: value for key, value in wanted.items() if getattr(person, key) != value}
        for key, value in changed.items():
            setattr(person, key, value)
        outcome = Outcome.UPDATED if changed else Outcome.UNCHANGED
    assembly_ids: list[int] = []
    for slug, role in row.assemblies:
        try:
            assembly = await assembly_by_slug(session, slug)
        except NotFound as error:
            raise InvalidInput(
                _("The assembly “%(slug)s” does not exist; import assemblies first.", slug=slug)
            ) from error
        assembly_ids.append(assembly.id)
        existing = await session.scalar(
            select(AssemblyMembership).where(
                AssemblyMembership.person_id == person.id,
                AssemblyMembership.assembly_id == assembly.id,
                AssemblyMembership.role == role,
            )
        )
        if existing is None:
            session.add(
                AssemblyMembership(
                    person_id=person.id, assembly_id=assembly.id, role=role, since=now, until=None
                )
            )
            outcome = Outcome.UPDATED if outcome is Outcome.UNCHANGED else outcome
        elif existing.until is not None:
            existing.until = None
            outcome = Outcome.UPDATED if outcome is Outcome.UNCHANGED else outcome
    for title in row.offices:
        held = await session.scalar(
            select(Office).where(
                Office.person_id == person.id, Office.title == title, Office.until.is_(None)
            )
        )
        if held is None:
            session.add(Office(title=title, person_id=person.id, since=now, until=None))
            outcome = Outcome.UPDATED if outcome is Outcome.UNCHANGED else outcome
    if row.last_active is not None:
        person.last_active_at = row.last_active
        automatic = await session.scalars(
            select(Assembly.id).where(Assembly.automatic_membership != "none")
        )
        await record_activity(session, person.id, [*assembly_ids, *automatic], row.last_active)
    return outcome


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
            for spec in specs:
                saved[spec.slug] = await _upsert_assembly(session, spec, ctx, now)
            # Links to other assemblies are resolved once every entry exists.
            for spec in specs:
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


async def _upsert_assembly(
    session: AsyncSession, spec: AssemblySpec, ctx: ServiceContext, now: datetime
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
        # A temporary unique reference; replaced below once the ID is known.
        assembly = Assembly(
            slug=spec.slug, reference=spec.reference or f"new:{spec.slug}", created_at=now, **wanted
        )
        session.add(assembly)
        await session.flush()
        if spec.reference is None:
            local = now.astimezone(ZoneInfo(ctx.party.timezone))
            assembly.reference = (
                f"{ctx.party.reference_prefix}-ASSE-{local:%Y}-{local:%m}-{assembly.id}"
            )
        return assembly, Outcome.CREATED
    if spec.reference is not None:
        wanted["reference"] = spec.reference
    changed = {key: value for key, value in wanted.items() if getattr(assembly, key) != value}
    for key, value in changed.items():
        setattr(assembly, key, value)
    return assembly, Outcome.UPDATED if changed else Outcome.UNCHANGED


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


async def add_to_assembly(
    ctx: ServiceContext, actor: str | None, slug: str, matrix_id: str, role: Role = Role.MEMBER
) -> bool:
    """A secretary (or the General Secretary) adds a registered person to the assembly.

    Returns False when the person already held that role. Only the General Secretary
    (or the operator) may appoint a secretary.
    """
    async with ctx.transaction() as session:
        now = ctx.now()
        acting = await person_by_matrix_id(session, actor) if actor is not None else None
        if acting is not None:
            check_may(standing(acting, now), Act.SPEAK)
        assembly = await assembly_by_slug(session, slug)
        general = acting is None or await holds_office(session, acting.id, GENERAL_SECRETARY, now)
        secretary = acting is not None and Role.SECRETARY in await roles_in(
            session, acting.id, assembly.id, now
        )
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
