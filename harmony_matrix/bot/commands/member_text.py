"""Text a member wrote (a question, a suggestion, an option, a name), ready to be shown in
a reply.

The reply escapes it in the HTML body and pings nobody (bot/replies.py); here it is also
kept from turning the bot's own words around. Hebrew or Arabic text, or a
right-to-left override (U+202E) typed on purpose, would otherwise run on into the
words after it. So the text is wrapped in a first-strong isolate (U+2068 ... U+2069),
balanced so that a closing character inside it cannot end the isolate early. The
member's characters are all kept.
"""

from __future__ import annotations

import re

from harmony_matrix.i18n import Message, verbatim

FIRST_STRONG_ISOLATE = "\u2068"
POP_DIRECTIONAL_ISOLATE = "\u2069"
#: Left-to-right, right-to-left and first-strong isolates: each is closed by U+2069.
ISOLATE_OPENERS = frozenset("\u2066\u2067\u2068")
#: What ends a paragraph for the bidirectional algorithm (class B), which also ends every
#: isolate and embedding: each paragraph of a text is isolated on its own.
PARAGRAPH_END = re.compile("(\r\n|[\n\r\x1c-\x1e\x85\u2029])")


def isolated(text: str) -> str:
    """``text`` in isolates of its own (one per paragraph), whatever bidirectional
    controls it holds."""
    return "".join(
        piece if PARAGRAPH_END.fullmatch(piece) else _isolated_paragraph(piece)
        for piece in PARAGRAPH_END.split(text)
        if piece
    )


def _isolated_paragraph(text: str) -> str:
    """One paragraph of text in an isolate of its own.

    A pop (U+2069) with no opener before it in the text would close the wrapping
    isolate: one more opener is put in front for each. Openers still open at the end
    are closed after the text, and so are the embeddings and overrides (U+202A-U+202E)
    opened inside them, which closing an isolate ends too.
    """
    depth = 0
    unopened = 0
    for character in text:
        if character in ISOLATE_OPENERS:
            depth += 1
        elif character == POP_DIRECTIONAL_ISOLATE:
            if depth:
                depth -= 1
            else:
                unopened += 1
    # The text's own pops close the extra openers; what is left open is closed after it.
    openers = FIRST_STRONG_ISOLATE * (1 + unopened)
    closers = POP_DIRECTIONAL_ISOLATE * (1 + depth)
    return f"{openers}{text}{closers}"


def member_text(text: str) -> Message:
    """A member's words as a message: shown as typed, never translated."""
    return verbatim(isolated(text))
