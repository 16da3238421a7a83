"""Matrix user IDs, as the register and every command accept them."""

from __future__ import annotations

import re

from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import _

MATRIX_ID = re.compile(r"^@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")


def check_matrix_id(value: str) -> str:
    """A Matrix user ID of any homeserver, e.g. @ana:harmony.uk or @bo:example.org:8448."""
    if not MATRIX_ID.match(value):
        raise InvalidInput(
            _(
                "“%(value)s” is not a Matrix ID. It looks like @name:server, "
                "for example @ana:matrix.org.",
                value=value,
            )
        )
    return value
