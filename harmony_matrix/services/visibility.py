"""Which meetings the public may see: one rule, in Python and in SQL.

A meeting is hidden only when every assembly it belongs to is private; a Party Thing
(no assemblies) is the whole party's, so public (decision 77)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_

from harmony_matrix.storage.models import Assembly, Meeting, MeetingAssembly, Visibility


def meeting_is_public(meeting: Meeting) -> bool:
    """For a meeting whose assemblies are loaded."""
    return not meeting.assemblies or any(
        assembly.visibility is Visibility.PUBLIC for assembly in meeting.assemblies
    )


def meeting_is_public_clause() -> ColumnElement[bool]:
    """The same rule as a column of a query that selects from ``meetings``."""
    involved = MeetingAssembly.meeting_id == Meeting.id
    return or_(
        ~exists().where(involved),
        exists().where(
            involved,
            MeetingAssembly.assembly_id == Assembly.id,
            Assembly.visibility == Visibility.PUBLIC,
        ),
    )
