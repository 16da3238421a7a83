"""Matrix user IDs, as the register and every command accept them.

The grammar is the Matrix specification's (appendices, "User Identifiers"):
``@localpart:server_name``, at most 255 characters in all.

- The localpart uses ``a-z 0-9 . _ = - / +`` only. The specification also tolerates
  "historical" IDs with other printable ASCII (upper case among them) that old servers
  handed out; Harmony refuses them. A register is typed by people, and an upper-case
  letter there is far more often a typo for an existing member than a historical ID;
  accepting it would make ``@Bob:x`` and ``@bob:x`` two people, since localparts are
  compared exactly. The message names the characters that are wrong.
- The server name is a DNS name, an IPv4 address or a bracketed IPv6 address, with an
  optional port. DNS names are case-insensitive, so Harmony stores them in lower case:
  ``@bob:Example.org`` and ``@bob:example.org`` are the same person. Migration 0006
  lower-cases the servers of IDs stored before this rule.
"""

from __future__ import annotations

import re

from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import _

#: The longest user ID the specification allows, the sigil and server included.
MAX_LENGTH = 255
LOCALPART_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._=-/+")
_PORT = r"(?::[0-9]{1,5})?"
SERVER_NAME = re.compile(
    r"(?:[A-Za-z0-9\-.]{1,255}|[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]{2,45}\])" + _PORT
)


def normalise_matrix_id(value: str) -> str:
    """The stored form of an ID: its server name in lower case, nothing else touched.

    For IDs that come from a homeserver (event senders) and need no checking.
    """
    if not value.startswith("@"):
        return value
    localpart, colon, server = value.partition(":")
    return f"{localpart}{colon}{server.lower()}"


def check_matrix_id(value: str) -> str:
    """A Matrix user ID of any homeserver, e.g. @ana:harmony.uk or @bo:example.org:8448,
    returned with its server name in lower case; InvalidInput says what is wrong."""
    text = value.strip()
    example = _(
        "“%(value)s” is not a Matrix ID. It looks like @name:server, for example @ana:matrix.org.",
        value=value,
    )
    if not text.startswith("@") or ":" not in text:
        raise InvalidInput(example)
    localpart, _colon, server = text[1:].partition(":")
    if not localpart:
        raise InvalidInput(example)
    wrong = sorted(set(localpart) - LOCALPART_CHARACTERS)
    if wrong:
        raise InvalidInput(
            _(
                "“%(value)s” has %(characters)s before the colon. There, Matrix user IDs use "
                "only lower-case letters, digits and these characters: . _ = - / +",
                value=value,
                characters=" ".join(f"“{character}”" for character in wrong),
            )
        )
    if not SERVER_NAME.fullmatch(server):
        raise InvalidInput(
            _(
                "“%(server)s” in “%(value)s” is not a server name: write a domain such as "
                "matrix.org, optionally with a port (example.org:8448).",
                server=server,
                value=value,
            )
        )
    normalised = normalise_matrix_id(text)
    if len(normalised) > MAX_LENGTH:
        raise InvalidInput(
            _(
                "“%(value)s” is longer than the %(limit)s characters a Matrix ID may have.",
                value=value,
                limit=MAX_LENGTH,
            )
        )
    return normalised
