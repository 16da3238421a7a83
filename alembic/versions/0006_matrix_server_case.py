"""matrix server names in lower case: @bob:Example.org and @bob:example.org are one person

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-02 17:30:00
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _normalised(matrix_id: str) -> str:
    # The rule of harmony_matrix.matrix_ids.normalise_matrix_id, frozen here: a migration
    # must do the same thing whatever later versions of the code do.
    if not matrix_id.startswith("@"):
        return matrix_id
    localpart, colon, server = matrix_id.partition(":")
    return f"{localpart}{colon}{server.lower()}"


def upgrade() -> None:
    connection = op.get_bind()
    people = connection.execute(sa.text("SELECT id, matrix_id FROM people")).all()
    same: dict[str, list[str]] = defaultdict(list)
    for _id, matrix_id in people:
        same[_normalised(matrix_id)].append(matrix_id)
    collisions = sorted(sorted(found) for found in same.values() if len(found) > 1)
    if collisions:
        listed = "; ".join(", ".join(found) for found in collisions)
        raise RuntimeError(
            "Matrix server names are case-insensitive, so these register entries are the "
            f"same person: {listed}. Keep one of each (move the other's memberships, "
            "offices and records to it, or remove it) with the previous version of "
            "Harmony, then upgrade again. Nothing was changed."
        )
    changed = [
        {"id": person_id, "matrix_id": _normalised(matrix_id)}
        for person_id, matrix_id in people
        if _normalised(matrix_id) != matrix_id
    ]
    if changed:
        connection.execute(
            sa.text("UPDATE people SET matrix_id = :matrix_id WHERE id = :id"), changed
        )


def downgrade() -> None:
    # The original case of a server name is not kept and means nothing: nothing to undo.
    pass
