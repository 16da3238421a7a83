"""The member register never loses or misreads data (issue 7): absent columns are left
alone, roles end with a date, every field limit and unique column is checked in the dry
run, rows are numbered as in the file, Matrix server names are case-insensitive, and the
import reads and writes in bulk."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select

from harmony_matrix.errors import InvalidInput, NotFound
from harmony_matrix.importers.assemblies_toml import parse_assemblies
from harmony_matrix.importers.members_csv import parse_members
from harmony_matrix.importers.report import Outcome
from harmony_matrix.services import registry
from harmony_matrix.services.lookup import assembly_by_slug, person_by_matrix_id
from harmony_matrix.services.membership import member_ids, roles_in
from harmony_matrix.storage.models import Assembly, AssemblyMembership, Office, Person, Role

from .helpers import BRYN, IRIS, MEDIA, OWG, row_counts

TZ = "Europe/London"


async def _import(ctx, text, *, apply=True):
    rows, problems = parse_members(text, TZ)
    return await registry.import_people(ctx, rows, problems, apply=apply)


async def _person(ctx, matrix_id):
    async with ctx.transaction() as session:
        return await person_by_matrix_id(session, matrix_id)


# -- columns left out, empty cells and explicit clearing ------------------------------


async def test_a_column_left_out_leaves_the_field_alone(demo):
    """The finding: matrix_id, display_name, status only lifted Iris's suspension and
    set Bryn's language from cy to en."""
    before_iris = await _person(demo, IRIS)
    assert before_iris.suspended_from is not None and before_iris.suspended_until is not None
    text = "matrix_id,display_name,status\n"
    text += f"{IRIS},Iris Walker,member\n{BRYN},Bryn Evans,member\n"
    report = await _import(demo, text)
    assert report.applied and report.count(Outcome.UNCHANGED) == 2
    iris, bryn = await _person(demo, IRIS), await _person(demo, BRYN)
    assert (iris.suspended_from, iris.suspended_until) == (
        before_iris.suspended_from,
        before_iris.suspended_until,
    )
    assert bryn.language == "cy"


async def test_an_empty_cell_leaves_alone_and_a_dash_clears(demo):
    header = "matrix_id,display_name,status,language,suspended_from,suspended_until\n"
    report = await _import(demo, header + f"{IRIS},Iris Walker,member,,,\n{BRYN},Bryn,member,,,\n")
    assert [r.outcome for r in report.rows] == [Outcome.UNCHANGED, Outcome.UPDATED]
    assert (await _person(demo, IRIS)).suspended_from is not None
    assert (await _person(demo, BRYN)).language == "cy"
    report = await _import(
        demo, header + f"{IRIS},Iris Walker,member,-,-,-\n{BRYN},Bryn,member,-,,\n"
    )
    assert report.applied and [r.outcome for r in report.rows] == [Outcome.UPDATED] * 2
    iris = await _person(demo, IRIS)
    assert iris.suspended_from is None and iris.suspended_until is None
    assert (await _person(demo, BRYN)).language == "en"  # "-" is the default language


async def test_suspension_dates_are_checked_against_the_stored_ones(demo):
    """Iris is suspended from 2026-10-01: an until before that is refused though the row
    gives no suspended_from, and clearing only the start leaves an end without a start."""
    header = "matrix_id,display_name,status,suspended_from,suspended_until\n"
    before = await row_counts(demo)
    report = await _import(demo, header + f"{IRIS},Iris Walker,member,,2026-09-01\n")
    assert not report.ok and "after suspended_from" in report.rows[0].reason.render("en")
    report = await _import(demo, header + f"{IRIS},Iris Walker,member,-,\n")
    assert not report.ok and "suspended_from is empty" in report.rows[0].reason.render("en")
    assert await row_counts(demo) == before


async def test_a_new_person_gets_the_defaults(ctx):
    await _import(ctx, "matrix_id,display_name,status\n@new:x.org,New,participant\n")
    person = await _person(ctx, "@new:x.org")
    assert person.language == "en" and person.suspended_from is None


# -- ending a role or a membership with a date ----------------------------------------


async def test_a_role_ends_on_a_date(demo, clock):
    on = clock() + timedelta(days=10)
    async with demo.transaction() as session:
        bryn = await person_by_matrix_id(session, BRYN)
        owg = await assembly_by_slug(session, OWG)
    ended = await registry.end_role(demo, None, BRYN, OWG, Role.MODERATOR, on)
    assert ended == [Role.MODERATOR]
    async with demo.transaction() as session:
        assert Role.MODERATOR in await roles_in(session, bryn.id, owg.id, clock())
        assert Role.MODERATOR not in await roles_in(session, bryn.id, owg.id, on)
        assert Role.MODERATOR not in await roles_in(session, bryn.id, owg.id, on + timedelta(1))
    # Imports add roles but never take them away; re-importing restarts an ended role.
    with pytest.raises(InvalidInput, match="no current role moderator"):
        await registry.end_role(demo, None, BRYN, OWG, Role.MODERATOR, on + timedelta(days=1))


async def test_a_membership_ends_with_all_its_roles(demo, clock):
    on = clock() + timedelta(days=1)
    async with demo.transaction() as session:
        iris = await person_by_matrix_id(session, IRIS)
        media = await assembly_by_slug(session, MEDIA)
        assert iris.id in await member_ids(session, media, on)
    assert await registry.end_role(demo, None, IRIS, MEDIA, None, on) == [Role.MEMBER]
    async with demo.transaction() as session:
        assert iris.id in await member_ids(session, media, clock())
        assert iris.id not in await member_ids(session, media, on)
        assert await roles_in(session, iris.id, media.id, on) == set()


async def test_ending_a_role_refuses_what_cannot_be(demo, clock):
    before = await row_counts(demo)
    with pytest.raises(InvalidInput, match="no current role secretary"):
        await registry.end_role(demo, None, IRIS, MEDIA, Role.SECRETARY, clock())
    with pytest.raises(InvalidInput, match="before it began"):
        await registry.end_role(demo, None, IRIS, MEDIA, None, datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(NotFound):
        await registry.end_role(demo, None, "@nobody:x.org", MEDIA, None, clock())
    with pytest.raises(NotFound):
        await registry.end_role(demo, None, IRIS, "no-such-assembly", None, clock())
    assert await row_counts(demo) == before


async def test_a_reimported_role_restarts(demo, clock):
    await registry.end_role(demo, None, IRIS, MEDIA, None, clock())
    clock.advance(days=1)
    report = await _import(
        demo, f"matrix_id,display_name,status,assemblies\n{IRIS},Iris Walker,member,{MEDIA}\n"
    )
    assert report.rows[0].outcome is Outcome.UPDATED
    async with demo.transaction() as session:
        iris = await person_by_matrix_id(session, IRIS)
        media = await assembly_by_slug(session, MEDIA)
        assert await roles_in(session, iris.id, media.id, clock()) == {Role.MEMBER}


# -- limits and unique columns, in the dry run, on both databases ---------------------


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("@long:x.org," + "N" * 201 + ",member,", "display_name is longer than 200"),
        ("@long:x.org,Long,member," + "t" * 81, "offices: “" + "t" * 81 + "” is longer than 80"),
        ("@" + "a" * 250 + ":x.org,A,member,", "longer than the 255"),
    ],
)
async def test_member_limits_are_checked_in_the_dry_run(ctx, row, says):
    text = "matrix_id,display_name,status,offices\n@ok:x.org,Ok,member,\n" + row + "\n"
    report = await _import(ctx, text, apply=False)
    errors = [(r.position, r.reason.render("en")) for r in report.rows if r.reason]
    assert len(errors) == 1 and errors[0][0] == 3 and says in errors[0][1], errors
    assert not (await _import(ctx, text)).applied
    assert (await row_counts(ctx))["people"] == 0


async def test_a_display_name_of_exactly_the_limit_is_kept(ctx):
    await _import(ctx, "matrix_id,display_name,status\n@a:x.org," + "é" * 200 + ",member\n")
    assert (await _person(ctx, "@a:x.org")).display_name == "é" * 200


def _entry(slug, **fields):
    lines = [f'slug = "{slug}"', f'name = "{fields.pop("name", slug)}"']
    lines += [f"{key} = {value}" for key, value in fields.items()]
    return "[[assembly]]\n" + "\n".join(lines) + "\n"


async def _assemblies(ctx, text, *, apply):
    specs, problems = parse_assemblies(text, "HPUK")
    return await registry.import_assemblies(ctx, specs, problems, apply=apply)


@pytest.mark.parametrize(
    ("text", "entry", "says"),
    [
        (_entry("a", name="N" * 201), 1, "name is longer than 200"),
        (_entry("a", subtitle='"' + "s" * 301 + '"'), 1, "subtitle is longer than 300"),
        (_entry("a" * 81), 1, "slug is longer than 80"),
        (
            _entry("a", reference='"HPUK-ASSE-2025-09-1"')
            + _entry("b", reference='"HPUK-ASSE-2025-09-1"'),
            2,
            "reference “HPUK-ASSE-2025-09-1” is already used by entry #1",
        ),
        (
            _entry("a", reference='"HPUK-ASSE-2025-09-' + "1" * 60 + '"'),
            1,
            "reference is longer than 64",
        ),
        (
            _entry("a", remits='[{topic = "x"}]') + _entry("b", remits='[{topic = "x"}]'),
            2,
            "The remit “x” is already in entry #1",
        ),
        (_entry("a", remits='[{topic = "x"}, {topic = "x"}]'), 1, "The remit “x” appears twice"),
        (_entry("a", remits='[{topic = "' + "t" * 201 + '"}]'), 1, "topic is longer than 200"),
    ],
)
async def test_assembly_limits_and_duplicates_in_the_file(ctx, text, entry, says):
    for apply in (False, True):
        report = await _assemblies(ctx, text, apply=apply)
        errors = [(r.position, r.reason.render("en")) for r in report.rows if r.reason]
        assert errors and errors[0][0] == entry and says in errors[0][1], errors
    assert (await row_counts(ctx))["assemblies"] == 0


async def test_a_reference_or_remit_taken_in_the_database_is_reported(ctx):
    first = _entry("a", reference='"HPUK-ASSE-2025-09-1"', remits='[{topic = "x"}]')
    assert (await _assemblies(ctx, first, apply=True)).applied
    before = await row_counts(ctx)
    for text, says in [
        (_entry("b", reference='"HPUK-ASSE-2025-09-1"'), "already the reference of “a”"),
        (_entry("b", remits='[{topic = "x"}]'), "already belongs to another assembly"),
    ]:
        report = await _assemblies(ctx, text, apply=False)
        assert not report.ok and says in report.rows[0].reason.render("en")
        assert not (await _assemblies(ctx, text, apply=True)).applied
    assert await row_counts(ctx) == before
    # Moving a reference from one assembly to another in one file is fine.
    swap = _entry("a", reference='"HPUK-ASSE-2025-09-7"') + _entry(
        "b", reference='"HPUK-ASSE-2025-09-1"'
    )
    assert (await _assemblies(ctx, swap, apply=True)).applied
    # So is swapping two references, and giving a new assembly one that moves away.
    swap = (
        _entry("a", reference='"HPUK-ASSE-2025-09-1"')
        + _entry("c", reference='"HPUK-ASSE-2025-09-7"')
        + _entry("b", reference='"HPUK-ASSE-2025-09-8"')
    )
    report = await _assemblies(ctx, swap, apply=True)
    assert report.applied, report.rows
    async with ctx.transaction() as session:
        query = select(Assembly.slug, Assembly.reference)
        found = {slug: reference for slug, reference in await session.execute(query)}
    assert found == {
        "a": "HPUK-ASSE-2025-09-1",
        "b": "HPUK-ASSE-2025-09-8",
        "c": "HPUK-ASSE-2025-09-7",
    }


async def test_a_long_new_slug_fits(ctx):
    """A new assembly's provisional reference once was "new:" + slug, longer than the
    64 characters of the column when the slug is long (refused by PostgreSQL only)."""
    report = await _assemblies(ctx, _entry("a" * 80), apply=True)
    assert report.applied, report.rows


# -- physical line numbers ------------------------------------------------------------


def test_rows_are_numbered_by_their_line_in_the_file():
    text = (
        "matrix_id,display_name,status\n"
        "\n"
        '@a:x.org,"Two\nlines",member\n'  # lines 3 and 4
        "\n"
        "@b:x.org,B,chair\n"  # line 6
        "@c:x.org,C\n"  # line 7: too short
        "@d:x.org,D,member,extra\n"  # line 8: too long
    )
    rows, problems = parse_members(text, TZ)
    assert [row.row for row in rows] == [3]
    assert [(p.row, p.key) for p in problems] == [(6, "@b:x.org"), (7, "@c:x.org"), (8, "@d:x.org")]
    assert "2 cells" in str(problems[1].reason) and "3 columns" in str(problems[1].reason)


def test_a_column_named_twice_is_refused():
    with pytest.raises(InvalidInput, match=r"status.*twice"):
        parse_members("matrix_id,display_name,status,status\n", TZ)


# -- Matrix IDs in the register -------------------------------------------------------


async def test_server_names_are_case_insensitive_in_the_register(ctx):
    text = "matrix_id,display_name,status\n@bob:Example.org,Bob,member\n"
    await _import(ctx, text)
    report = await _import(ctx, "matrix_id,display_name,status\n@bob:example.org,Bob,member\n")
    assert report.rows[0].outcome is Outcome.UNCHANGED
    assert (await row_counts(ctx))["people"] == 1
    assert (await _person(ctx, "@bob:EXAMPLE.org")).matrix_id == "@bob:example.org"
    _rows, problems = parse_members(text + "@bob:example.ORG,Bob,member\n", TZ)
    assert "already on row 2" in str(problems[0].reason)


async def test_an_upper_case_localpart_is_refused_with_the_reason(ctx):
    report = await _import(ctx, "matrix_id,display_name,status\n@Bob:example.org,Bob,member\n")
    assert "has “B”" in report.rows[0].reason.render("en")


# -- bulk reads and writes ------------------------------------------------------------


def _members_file(count, start=0):
    lines = ["matrix_id,display_name,status,language,assemblies,offices,last_active"]
    for n in range(start, start + count):
        lines.append(f"@p{n}:x.org,Person {n},member,cy,{MEDIA};{OWG}:moderator,clerk,2026-10-01")
    return "\n".join(lines) + "\n"


async def test_the_import_runs_a_fixed_number_of_statements(demo):
    """Not a timing: the number of SQL statements does not grow with the rows."""
    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(demo.engine.sync_engine, "before_cursor_execute", count)
    try:
        counts = []
        for size, start in ((5, 0), (200, 5)):
            for apply in (False, True):
                statements.clear()
                report = await _import(demo, _members_file(size, start), apply=apply)
                assert report.ok and report.count(Outcome.CREATED) == size
                counts.append(len(statements))
    finally:
        event.remove(demo.engine.sync_engine, "before_cursor_execute", count)
    dry_small, apply_small, dry_large, apply_large = counts
    assert dry_small == dry_large and apply_small == apply_large, counts
    async with demo.transaction() as session:
        person = await person_by_matrix_id(session, "@p204:x.org")
        roles = set(
            await session.scalars(
                select(AssemblyMembership.role).where(AssemblyMembership.person_id == person.id)
            )
        )
        offices = list(
            await session.scalars(select(Office.title).where(Office.person_id == person.id))
        )
    assert roles == {Role.MEMBER, Role.MODERATOR} and offices == ["clerk"]
    assert person.language == "cy" and person.last_active_at is not None
    again = await _import(demo, _members_file(200, 5))
    assert again.count(Outcome.UNCHANGED) == 200


async def test_progress_is_reported(demo):
    seen = []
    rows, problems = parse_members(_members_file(30), TZ)
    await registry.import_people(
        demo, rows, problems, apply=True, progress=lambda d, t: seen.append((d, t))
    )
    assert seen and seen[-1][0] == seen[-1][1] > 30  # rows, roles, offices, activity
    assert [done for done, _total in seen] == sorted(done for done, _total in seen)
    assert (await row_counts(demo))["people"] >= 30 and isinstance(Person, type)


NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r")
    | st.sampled_from([",", '"', "\n", " "]),
    min_size=1,
    max_size=40,
).filter(lambda name: name.strip() and len(name.strip()) <= 200)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(NAMES, st.integers(0, 2)), min_size=1, max_size=8))
def test_any_names_are_read_back_exactly_with_their_line(people):
    """Whatever a spreadsheet writes (commas, quotes, line breaks in a cell, blank lines
    between rows), each name is read back as written and numbered by its first line."""
    out = io.StringIO()
    out.write("matrix_id,display_name,status\n")
    expected = []
    line = 2
    for n, (name, blanks) in enumerate(people):
        out.write("\n" * blanks)
        line += blanks
        cell = io.StringIO()
        csv.writer(cell, lineterminator="\n").writerow([f"@p{n}:x.org", name, "member"])
        expected.append((line, name.strip()))
        out.write(cell.getvalue())
        line += cell.getvalue().count("\n")
    rows, problems = parse_members(out.getvalue(), TZ)
    assert problems == []
    assert [(row.row, row.display_name) for row in rows] == expected
