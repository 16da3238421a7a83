"""The database's limits, checked while reading a file.

SQLite keeps a 300-character name in a String(200) column; PostgreSQL refuses it. The
importers check every limit themselves, read from the models, so that a dry run reports
the same problems on both databases and the limits cannot drift from the schema.
"""

from __future__ import annotations

from typing import Any

from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import _


def column_limit(column: Any) -> int | None:
    """The most characters a String(n) column holds (None: no limit)."""
    key = str(column)
    if key not in _LIMITS:
        _LIMITS[key] = getattr(column.type, "length", None)
    return _LIMITS[key]


_LIMITS: dict[str, int | None] = {}


def check_length(value: str, column: Any, label: str) -> None:
    """Refuse text longer than its column: SQLite would keep it, PostgreSQL refuse it."""
    limit = column_limit(column)
    if limit is not None and len(value) > limit:
        raise InvalidInput(
            _(
                "%(field)s is longer than %(limit)s characters (%(length)s).",
                field=label,
                limit=limit,
                length=len(value),
            )
        )
