"""The member register as CSV.

Columns (header row required, order free): ``matrix_id``, ``display_name``, ``status``
(member or participant) are required; ``language``, ``suspended_from``,
``suspended_until`` (YYYY-MM-DD), ``assemblies`` (``slug`` or ``slug:role``, separated by
``;``; roles: member, secretary, moderator), ``offices`` (e.g. general_secretary) and
``last_active`` (YYYY-MM-DD) are optional.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from harmony_matrix.constitution.eligibility import Status
from harmony_matrix.errors import HarmonyError, InvalidInput
from harmony_matrix.i18n import Message, _, any_of, known_language
from harmony_matrix.matrix_ids import check_matrix_id
from harmony_matrix.storage.models import Role

REQUIRED = ("matrix_id", "display_name", "status")
OPTIONAL = (
    "language",
    "suspended_from",
    "suspended_until",
    "assemblies",
    "offices",
    "last_active",
)


@dataclass(frozen=True)
class PersonRow:
    row: int
    matrix_id: str
    display_name: str
    status: Status
    language: str
    suspended_from: datetime | None
    suspended_until: datetime | None
    assemblies: tuple[tuple[str, Role], ...]
    offices: tuple[str, ...]
    last_active: datetime | None


@dataclass(frozen=True)
class RowProblem:
    row: int
    key: str
    reason: Message


def parse_members(text: str, timezone: str) -> tuple[list[PersonRow], list[RowProblem]]:
    """Read every row; return the good ones and a problem for each bad one."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in reader.fieldnames or []]
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
    rows: list[PersonRow] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(reader, start=2):
        cells = {key.strip(): (value or "").strip() for key, value in raw.items() if key}
        if None in raw:
            problems.append(
                RowProblem(number, cells.get("matrix_id", ""), _("This row has too many cells."))
            )
            continue
        if not any(cells.values()):
            continue
        try:
            person = _parse_row(number, cells, timezone)
        except HarmonyError as error:
            problems.append(RowProblem(number, cells.get("matrix_id", ""), error.message))
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


def _parse_row(number: int, cells: dict[str, str], timezone: str) -> PersonRow:
    matrix_id = check_matrix_id(cells["matrix_id"])
    name = cells["display_name"]
    if not name:
        raise InvalidInput(_("The display_name is empty."))
    try:
        status = Status(cells["status"].lower())
    except ValueError as error:
        raise InvalidInput(
            _(
                "The status “%(value)s” is not known; write member or participant.",
                value=cells["status"],
            )
        ) from error
    language = "en"
    if cells.get("language"):
        found = known_language(cells["language"])
        if found is None:
            raise InvalidInput(
                _(
                    "“%(value)s” is not a language code; use a code such as en, cy or fr.",
                    value=cells["language"],
                )
            )
        language = found
    suspended_from = _date(cells, "suspended_from", timezone)
    suspended_until = _date(cells, "suspended_until", timezone)
    if suspended_until and not suspended_from:
        raise InvalidInput(_("suspended_until is set but suspended_from is empty."))
    if suspended_from and suspended_until and suspended_until <= suspended_from:
        raise InvalidInput(_("suspended_until must be after suspended_from."))
    return PersonRow(
        row=number,
        matrix_id=matrix_id,
        display_name=name,
        status=status,
        language=language,
        suspended_from=suspended_from,
        suspended_until=suspended_until,
        assemblies=_assemblies(cells.get("assemblies", "")),
        offices=tuple(part.strip() for part in cells.get("offices", "").split(";") if part.strip()),
        last_active=_date(cells, "last_active", timezone),
    )


def _date(cells: dict[str, str], column: str, timezone: str) -> datetime | None:
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
    return datetime.combine(day, time(0, 0), tzinfo=ZoneInfo(timezone))


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
