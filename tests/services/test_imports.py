"""The member register and assemblies: dry runs, row-by-row reports, all or nothing."""

import pytest
from sqlalchemy import select

from harmony_matrix.demo import demo_file
from harmony_matrix.errors import InvalidInput
from harmony_matrix.importers.assemblies_toml import parse_assemblies
from harmony_matrix.importers.members_csv import parse_members
from harmony_matrix.importers.report import Outcome
from harmony_matrix.services import registry
from harmony_matrix.storage.models import Assembly, AssemblyMembership, Person, Remit

from .helpers import row_counts

TZ = "Europe/London"
HEADER = "matrix_id,display_name,status,language,assemblies\n"


async def _import(ctx, text, *, apply):
    rows, problems = parse_members(text, TZ)
    return await registry.import_people(ctx, rows, problems, apply=apply)


async def test_dry_run_reports_and_writes_nothing(demo):
    before = await row_counts(demo)
    text = HEADER + "@new:example.org,New Person,member,cy,media-working-group\n"
    text += "@ana:harmony.uk,Ana Lima,member,en,\n"
    report = await _import(demo, text, apply=False)
    assert [(r.position, r.outcome) for r in report.rows] == [
        (2, Outcome.CREATED),
        (3, Outcome.UNCHANGED),
    ]
    assert report.where(report.rows[0]).render("en") == "row 2"
    assert not report.applied and await row_counts(demo) == before
    report = await _import(demo, text, apply=True)
    assert report.applied
    async with demo.transaction() as session:
        person = await session.scalar(select(Person).where(Person.matrix_id == "@new:example.org"))
        assert person.language == "cy"  # kept even before a Welsh catalog exists
        roles = await session.scalars(
            select(AssemblyMembership).where(AssemblyMembership.person_id == person.id)
        )
        assert len(list(roles)) == 1


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("ana:harmony.uk,Ana,member,en,", "not a Matrix ID"),
        ("@x:example.org,,member,en,", "display_name is empty"),
        ("@x:example.org,X,chair,en,", "member or participant"),
        ("@x:example.org,X,member,xx-nonsense-1,", "not a language code"),
        ("@x:example.org,X,member,en,no-such-assembly", "does not exist"),
        ("@x:example.org,X,member,en,media-working-group:boss", "role"),
        ("@x:example.org,X,member,en,,extra", "too many cells"),
    ],
)
async def test_a_bad_row_is_named_and_nothing_is_written(demo, row, reason):
    before = await row_counts(demo)
    text = HEADER + "@fine:example.org,Fine,member,en,\n" + row + "\n"
    report = await _import(demo, text, apply=True)
    assert not report.ok and not report.applied
    errors = [r for r in report.rows if r.outcome is Outcome.ERROR]
    assert [e.position for e in errors] == [3]
    assert reason in errors[0].reason.render("en")
    assert await row_counts(demo) == before


def test_duplicate_ids_and_missing_columns():
    rows, problems = parse_members(HEADER + "@a:x.org,A,member,en,\n@a:x.org,A,member,en,\n", TZ)
    assert len(rows) == 1 and problems[0].row == 3 and "row 2" in str(problems[0].reason)
    with pytest.raises(InvalidInput, match="display_name"):
        parse_members("matrix_id,status\n@a:x.org,member\n", TZ)
    with pytest.raises(InvalidInput, match="Unknown columns: colour"):
        parse_members(HEADER.strip() + ",colour\n", TZ)


def test_suspension_dates():
    text = "matrix_id,display_name,status,suspended_from,suspended_until\n"
    _rows, problems = parse_members(text + "@a:x.org,A,member,2026-01-01,2025-01-01\n", TZ)
    assert "after" in str(problems[0].reason)
    _rows, problems = parse_members(text + "@a:x.org,A,member,01/02/2026,\n", TZ)
    assert "YYYY-MM-DD" in str(problems[0].reason)


async def test_the_seed_assembly_is_imported_exactly(demo):
    async with demo.transaction() as session:
        owg = await session.scalar(
            select(Assembly).where(Assembly.slug == "operational-working-group")
        )
        remits = set(await session.scalars(select(Remit.topic).where(Remit.assembly_id == owg.id)))
        rec = await session.scalar(select(Assembly).where(Assembly.slug == "harmony-rec"))
    assert owg.reference == "HPUK-ASSE-2025-09-4"
    assert owg.subtitle == "Helping Harmony work (and play!)"
    assert owg.purpose.startswith("This assembly maintains the constitution, records consensus")
    assert (
        owg.composition == "All Harmony participants are automatically a member of this assembly."
    )
    assert owg.about.endswith(
        "All Party participants are automatically considered members of this assembly."
    )
    assert owg.automatic_membership == "everyone" and owg.is_open and owg.visibility == "public"
    assert rec.parent_id == owg.id
    assert "information technology" in remits


async def test_assembly_import_is_idempotent_and_checks_links(ctx):
    specs, problems = parse_assemblies(demo_file("assemblies.toml"), "HPUK")
    first = await registry.import_assemblies(ctx, specs, problems, apply=True)
    assert first.count(Outcome.CREATED) == len(specs)
    again = await registry.import_assemblies(ctx, specs, problems, apply=True)
    assert again.count(Outcome.UNCHANGED) == len(specs)
    before = await row_counts(ctx)
    bad = '[[assembly]]\nslug = "a"\nname = "A"\nparent = "nowhere"\n'
    specs, problems = parse_assemblies(bad, "HPUK")
    report = await registry.import_assemblies(ctx, specs, problems, apply=True)
    assert not report.ok and "nowhere" in report.rows[0].reason.render("en")
    assert await row_counts(ctx) == before


async def test_reference_is_generated_in_decidim_format(ctx):
    specs, problems = parse_assemblies('[[assembly]]\nslug = "new-group"\nname = "New"\n', "HPUK")
    await registry.import_assemblies(ctx, specs, problems, apply=True)
    async with ctx.transaction() as session:
        assembly = await session.scalar(select(Assembly))
    assert assembly.reference == f"HPUK-ASSE-2026-11-{assembly.id}"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ('slug = "Bad Slug"\nname = "X"', "lower-case"),
        ('slug = "x"', "name is required"),
        ('slug = "x"\nname = "X"\nreference = "XX-ASSE-2025-09-1"', "prefix HPUK"),
        ('slug = "x"\nname = "X"\nreference = "HPUK-2025-09-1"', "must look like"),
        ('slug = "x"\nname = "X"\nown_quorum = 10', "15%"),
        ('slug = "x"\nname = "X"\nkind = "club"', "kind"),
        ('slug = "x"\nname = "X"\ncolour = "red"', "Unknown fields: colour"),
    ],
)
def test_bad_assembly_entries(entry, reason):
    specs, problems = parse_assemblies("[[assembly]]\n" + entry + "\n", "HPUK")
    assert not specs and reason in str(problems[0].reason)


def test_not_toml():
    with pytest.raises(InvalidInput, match="not valid TOML"):
        parse_assemblies("[[assembly]\n", "HPUK")
    with pytest.raises(InvalidInput, match="no \\[\\[assembly\\]\\]"):
        parse_assemblies("title = 'x'\n", "HPUK")


async def test_quorum_of_demo_assemblies(demo, clock):
    owg = await registry.assembly_quorum(demo, "operational-working-group")
    # 40 people, 2 suspended: 38 active, above 30 -> ceil(15% of 38) = 6.
    assert (owg.quorum.active_population, owg.quorum.needed) == (38, 6)
    das = await registry.assembly_quorum(demo, "disability-activism-society")
    assert das.quorum.needed == 4 and not das.quorum.reachable
    clock.advance(days=91)  # nobody active for 90 days: the population is 0
    assert (
        await registry.assembly_quorum(demo, "operational-working-group")
    ).quorum.active_population == 0


async def test_secretaries_add_members_and_only_the_general_secretary_appoints(demo):
    from harmony_matrix.errors import NotAllowed
    from harmony_matrix.storage.models import Role

    from .helpers import CHLOE, DAS, GWEN, IRIS, OUTSIDER_MEMBER

    assert await registry.add_to_assembly(demo, CHLOE, DAS, OUTSIDER_MEMBER)
    assert not await registry.add_to_assembly(demo, CHLOE, DAS, OUTSIDER_MEMBER)
    before = await row_counts(demo)
    with pytest.raises(NotAllowed, match="appoint a secretary"):
        await registry.add_to_assembly(demo, CHLOE, DAS, GWEN, Role.SECRETARY)
    with pytest.raises(NotAllowed):
        await registry.add_to_assembly(demo, GWEN, DAS, OUTSIDER_MEMBER, Role.MODERATOR)
    with pytest.raises(NotAllowed, match="suspended"):
        await registry.add_to_assembly(demo, IRIS, DAS, GWEN)
    assert await row_counts(demo) == before
    assert await registry.add_to_assembly(demo, "@ana:harmony.uk", DAS, GWEN, Role.SECRETARY)
    das = await registry.assembly_quorum(demo, DAS)
    assert das.quorum.active_population == 3  # new members are not yet active


async def test_entries_are_numbered_as_in_the_file(ctx):
    text = (
        '[[assembly]]\nslug = "alpha"\nname = "Alpha"\n'
        '[[assembly]]\nslug = "Bad Slug"\nname = "Bad"\n'
        '[[assembly]]\nslug = "gamma"\nname = "Gamma"\nparent = "nowhere"\n'
    )
    specs, problems = parse_assemblies(text, "HPUK")
    report = await registry.import_assemblies(ctx, specs, problems, apply=False)
    assert [(r.position, r.key, r.outcome) for r in report.rows] == [
        (1, "alpha", Outcome.CREATED),
        (2, "Bad Slug", Outcome.ERROR),
        (3, "gamma", Outcome.ERROR),
    ]
    assert report.where(report.rows[2]).render("en") == "[[assembly]] #3"
