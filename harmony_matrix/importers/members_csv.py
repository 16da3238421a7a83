"""The member register as CSV.

Columns (header row required, order free): ``matrix_id``, ``display_name``, ``status``
(member or participant) are required; ``language``, ``suspended_from``,
``suspended_until`` (YYYY-MM-DD), ``assemblies`` (``slug`` or ``slug:role``, separated by
``;``; roles: member, secretary, moderator), ``offices`` (e.g. general_secretary) and
``last_active`` (YYYY-MM-DD) are optional.

An import never loses what the file does not say:

- a column left out of the header leaves that field of everyone alone;
- an empty cell leaves that field of that person alone (a new person gets the default:
  language en, not suspended);
- ``-`` in ``language``, ``suspended_from`` or ``suspended_until`` clears the field
  (the language goes back to en, the suspension dates are removed): clearing is explicit;
- ``assemblies`` and ``offices`` only add: a role or membership ends with
  ``harmony members end-role``, never because a file leaves it out.

Rows are numbered by their physical line in the file (the header is line 1; blank lines
and line breaks inside quoted cells count), as an editor shows them. Every length limit
of the database is checked here, so that a dry run finds what PostgreSQL would refuse.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from harmony_matrix.constitution.eligibility import Status
from harmony_matrix.errors import HarmonyError, InvalidInput
from harmony_matrix.i18n import Message, _, _n, any_of, known_language
from harmony_matrix.importers.bulk import paused_gc
from harmony_matrix.importers.limits import check_length
from harmony_matrix.matrix_ids import check_matrix_id
from harmony_matrix.storage.models import Office, Person, Role

REQUIRED = ("matrix_id", "display_name", "status")
OPTIONAL = (
    "language",
    "suspended_from",
    "suspended_until",
    "assemblies",
    "offices",
    "last_active",
)
#: The cell that clears a field (only where clearing means something).
CLEAR = "-"
CLEARABLE = ("language", "suspended_from", "suspended_until")
DEFAULT_LANGUAGE = "en"


@functools.cache
def _language(code: str) -> str | None:
    # Babel parses a tag in tens of microseconds; a register repeats a few codes.
    return known_language(code)


@dataclass(frozen=True)
class PersonRow:
    row: int
    matrix_id: str
    display_name: str
    status: Status
    #: The other fields of Person this row sets: only columns present with a value;
    #: None where the cell is "-" (cleared). Fields not in here are left alone.
    fields: dict[str, Any] = field(default_factory=dict)
    assemblies: tuple[tuple[str, Role], ...] = ()
    offices: tuple[str, ...] = ()
    last_active: datetime | None = None


@dataclass(frozen=True)
class RowProblem:
    row: int
    key: str
    reason: Message


def parse_members(
    text: str, timezone: str, progress: Callable[[int, int], None] | None = None
) -> tuple[list[PersonRow], list[RowProblem]]:
    """Read every row; return the good ones and a problem for each bad one.

    ``progress(done, total)`` is called now and then with physical lines read.
    """
    text = text.lstrip("\ufeff")
    total_lines = text.count("\n") + 1
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InvalidInput(
            _(
                "The first row must name the columns; missing: %(columns)s.",
                columns=", ".join(missing),
            )
        )
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if unknown:
        raise InvalidInput(
            _(
                "Unknown columns: %(columns)s. Known columns: %(known)s.",
                columns=", ".join(unknown),
                known=", ".join(REQUIRED + OPTIONAL),
            )
        )
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise InvalidInput(_("The columns %(columns)s are named twice.", columns=", ".join(twice)))
    with paused_gc():
        rows, problems = _read_rows(reader, header, ZoneInfo(timezone), total_lines, progress)
    if progress is not None:
        progress(total_lines, total_lines)
    return rows, problems


def _read_rows(
    reader: Any,
    header: list[str],
    zone: ZoneInfo,
    total_lines: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[PersonRow], list[RowProblem]]:
    width = len(header)
    key_index = header.index("matrix_id")
    rows: list[PersonRow] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    line = reader.line_num
    for record in reader:
        # The record began on the line after the previous one ended (csv skips nothing:
        # a blank line is an empty record, and quoted line breaks advance line_num).
        number, line = line + 1, reader.line_num
        if progress is not None and number % 5000 == 0:
            progress(number, total_lines)
        if not any(cell.strip() for cell in record):
            continue
        key = record[key_index].strip() if key_index < len(record) else ""
        if len(record) != width:
            reason = (
                _("This row has too many cells.")
                if len(record) > width
                else _n(
                    "This row has %(count)s cell; the header names %(columns)s columns.",
                    "This row has %(count)s cells; the header names %(columns)s columns.",
                    len(record),
                    columns=width,
                )
            )
            problems.append(RowProblem(number, key, reason))
            continue
        cells = {name: value.strip() for name, value in zip(header, record, strict=True)}
        try:
            person = _parse_row(number, cells, zone)
        except HarmonyError as error:
            problems.append(RowProblem(number, key, error.message))
            continue
        if person.matrix_id in seen:
            problems.append(
                RowProblem(
                    number,
                    person.matrix_id,
                    _("This Matrix ID is already on row %(row)s.", row=seen[person.matrix_id]),
                )
            )
            continue
        seen[person.matrix_id] = number
        rows.append(person)
    return rows, problems


def _parse_row(number: int, cells: dict[str, str], zone: ZoneInfo) -> PersonRow:
    matrix_id = check_matrix_id(cells["matrix_id"])
    name = cells["display_name"]
    if not name:
        raise InvalidInput(_("The display_name is empty."))
    check_length(name, Person.display_name, "display_name")
    try:
        status = Status(cells["status"].lower())
    except ValueError as error:
        raise InvalidInput(
            _(
                "The status “%(value)s” is not known; write member or participant.",
                value=cells["status"],
            )
        ) from error
    fields: dict[str, Any] = {}
    language = cells.get("language", "")
    if language == CLEAR:
        fields["language"] = DEFAULT_LANGUAGE
    elif language:
        found = _language(language)
        if found is None:
            raise InvalidInput(
                _(
                    "“%(value)s” is not a language code; use a code such as en, cy or fr.",
                    value=language,
                )
            )
        check_length(found, Person.language, "language")
        fields["language"] = found
    for column in ("suspended_from", "suspended_until"):
        if cells.get(column) == CLEAR:
            fields[column] = None
        elif cells.get(column):
            fields[column] = _date(cells, column, zone)
    if "suspended_from" in fields and "suspended_until" in fields:
        # With one of them only, the stored other one counts: the service checks.
        check_suspension(fields["suspended_from"], fields["suspended_until"])
    offices = tuple(part.strip() for part in cells.get("offices", "").split(";") if part.strip())
    for title in offices:
        check_length(title, Office.title, f"offices: “{title}”")
    return PersonRow(
        row=number,
        matrix_id=matrix_id,
        display_name=name,
        status=status,
        fields=fields,
        assemblies=_assemblies(cells.get("assemblies", "")),
        offices=offices,
        last_active=_date(cells, "last_active", zone),
    )


def check_suspension(start: datetime | None, end: datetime | None) -> None:
    """The suspension a person ends up with (from the row and what is stored)."""
    if end and not start:
        raise InvalidInput(_("suspended_until is set but suspended_from is empty."))
    if start and end and end <= start:
        raise InvalidInput(_("suspended_until must be after suspended_from."))


def _date(cells: dict[str, str], column: str, zone: ZoneInfo) -> datetime | None:
    value = cells.get(column, "")
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as error:
        raise InvalidInput(
            _(
                "%(column)s “%(value)s” is not a date; write YYYY-MM-DD.",
                column=column,
                value=value,
            )
        ) from error
    return datetime.combine(day, time(0, 0), tzinfo=zone)


def _assemblies(value: str) -> tuple[tuple[str, Role], ...]:
    found: list[tuple[str, Role]] = []
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        slug, _sep, role_text = part.partition(":")
        try:
            role = Role(role_text.strip().lower() or "member")
        except ValueError as error:
            raise InvalidInput(
                _(
                    "The role “%(role)s” is not known; use %(roles)s.",
                    role=role_text,
                    roles=any_of(role.value for role in Role),
                )
            ) from error
        found.append((slug.strip(), role))
    return tuple(found)
