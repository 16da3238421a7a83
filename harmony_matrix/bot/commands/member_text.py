"""Text a member wrote (a question, a suggestion, an option, a name), ready to be shown in
a reply.

The reply escapes it in the HTML body and pings nobody (bot/replies.py); here it is also
kept from turning the bot's own words around: it is wrapped in a first-strong isolate
(U+2068 ... U+2069), see :func:`harmony_matrix.i18n.isolated`, which the use cases' own
messages (announcements, direct messages) use too.
"""

from __future__ import annotations

from harmony_matrix.i18n import (
    FIRST_STRONG_ISOLATE,
    POP_DIRECTIONAL_ISOLATE,
    Message,
    isolated,
    member_words,
)

__all__ = ["FIRST_STRONG_ISOLATE", "POP_DIRECTIONAL_ISOLATE", "isolated", "member_text"]


def member_text(text: str) -> Message:
    """A member's words as a message: shown as typed, never translated."""
    return member_words(text)
