"""What an import did or would do, row by row."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from harmony_matrix.i18n import Message, _, verbatim


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ERROR = "error"


OUTCOME_NAMES = {
    Outcome.CREATED: _("new"),
    Outcome.UPDATED: _("updated"),
    Outcome.UNCHANGED: _("unchanged"),
    Outcome.ERROR: _("error"),
}


@dataclass(frozen=True)
class RowReport:
    #: The row as a spreadsheet numbers it (the header is row 1), or the entry's number.
    position: int
    key: str
    outcome: Outcome
    reason: Message | None = None


@dataclass
class ImportReport:
    #: "row" for CSV rows, "entry" for TOML [[assembly]] entries.
    unit: str = "row"
    rows: list[RowReport] = field(default_factory=list)
    applied: bool = False

    def where(self, row: RowReport) -> Message:
        if self.unit == "row":
            return _("row %(number)s", number=row.position)
        return verbatim(f"[[assembly]] #{row.position}")

    @property
    def ok(self) -> bool:
        return not any(row.outcome is Outcome.ERROR for row in self.rows)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for row in self.rows if row.outcome is outcome)
