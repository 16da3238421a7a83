"""What the bot says, kept as messages until it is rendered in the reader's language.

A :class:`Reply` is a list of blocks (lines and bulleted lists) made of messages. It is
rendered twice: a plain body that reads well aloud (no tables; every meaning in words)
and an HTML body in which every text is escaped, so that what a member wrote (an
assembly's name, a question, ``<script>`` or ``@room``) is shown as text and never
becomes markup, a link or a mention. Whom the bot pings is said only in ``m.mentions``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harmony_matrix.i18n import DEFAULT_LANGUAGE, Message

NOTICE = "m.notice"
HTML_FORMAT = "org.matrix.custom.html"


@dataclass(frozen=True)
class Code:
    """A command or a usage line, shown in a monospace font."""

    text: Message


@dataclass(frozen=True)
class Strong:
    """Text that stands out (a result: "reached", "not reached")."""

    text: Message


Span = Message | Code | Strong


@dataclass(frozen=True)
class Line:
    """One paragraph: spans rendered one after the other, separated by a space."""

    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Items:
    """A bulleted list, one line per item."""

    lines: tuple[Line, ...]


Block = Line | Items


@dataclass
class Reply:
    """A reply, or an announcement, before it is rendered.

    ``language`` is the language it must be rendered in when the command chose it (a
    reply to ``!language`` speaks the new language); the dispatcher fills in the
    sender's otherwise. ``in_reply_to`` and ``mention`` are the command's event and its
    sender, for :func:`content`.
    """

    blocks: list[Block] = field(default_factory=list)
    language: str | None = None
    in_reply_to: str | None = None
    mention: str | None = None
    #: The thread the command was sent in, so that the reply stays in it.
    thread_root: str | None = None
    #: The command changed which rooms there should be, or who belongs in them (a room
    #: linked, a Thing called): the bot brings its rooms in step at once.
    rooms_changed: bool = False
    #: What :func:`rendered` made last, with the language and blocks it was made from:
    #: the dispatcher renders a reply to catch a failure, and that rendering is reused.
    _rendered: tuple[str, int, str, str] | None = field(default=None, repr=False)

    def say(self, *spans: Span) -> Reply:
        """Add a paragraph; returns the reply, so calls can be chained."""
        self.blocks.append(Line(tuple(spans)))
        return self

    def items(self, lines: Iterable[Line | Span]) -> Reply:
        """Add a bulleted list (nothing when there are no items)."""
        built = tuple(line if isinstance(line, Line) else Line((line,)) for line in lines)
        if built:
            self.blocks.append(Items(built))
        return self


def _span_text(span: Span, language: str) -> str:
    if isinstance(span, Code | Strong):
        return span.text.render(language)
    return span.render(language)


def _line_plain(line: Line, language: str) -> str:
    return " ".join(_span_text(span, language) for span in line.spans)


def render_plain(reply: Reply, language: str) -> str:
    """The plain body: one paragraph per line, list items on lines of their own."""
    lines: list[str] = []
    for block in reply.blocks:
        if isinstance(block, Items):
            lines.extend(f"- {_line_plain(item, language)}" for item in block.lines)
        else:
            lines.append(_line_plain(block, language))
    return "\n".join(lines)


def _escape(text: str) -> str:
    # Text goes only between tags, never into an attribute: quotes need no escaping
    # (and French reads better without &#x27; for every apostrophe).
    return html.escape(text, quote=False).replace("\n", "<br>")


def _span_html(span: Span, language: str) -> str:
    text = _escape(_span_text(span, language))
    if isinstance(span, Code):
        return f"<code>{text}</code>"
    if isinstance(span, Strong):
        return f"<strong>{text}</strong>"
    return text


def _line_html(line: Line, language: str) -> str:
    return " ".join(_span_html(span, language) for span in line.spans)


def render_html(reply: Reply, language: str) -> str:
    """The HTML body; every text in it, translated or typed by a member, is escaped."""
    parts: list[str] = []
    for block in reply.blocks:
        if isinstance(block, Items):
            items = "".join(f"<li>{_line_html(item, language)}</li>" for item in block.lines)
            parts.append(f"<ul>{items}</ul>")
        else:
            parts.append(f"<p>{_line_html(block, language)}</p>")
    return "".join(parts)


def render(reply: Reply, language: str) -> dict[str, Any]:
    """An ``m.notice`` content that pings nobody (``m.mentions`` is present and empty, so
    an "@room" or a user ID in the text is not a mention either)."""
    return {
        "msgtype": NOTICE,
        "body": render_plain(reply, language),
        "format": HTML_FORMAT,
        "formatted_body": render_html(reply, language),
        "m.mentions": {},
    }


def reply_content(
    reply: Reply,
    language: str,
    in_reply_to: str | None,
    mention: str | None,
    thread_root: str | None = None,
) -> dict[str, Any]:
    """:func:`render`, as a reply to the event ``in_reply_to`` that mentions ``mention``
    (the command's sender) and nobody else; in the thread ``thread_root`` if given."""
    content = render(reply, language)
    if mention:
        content["m.mentions"] = {"user_ids": [mention]}
    if thread_root:
        relation: dict[str, Any] = {"rel_type": "m.thread", "event_id": thread_root}
        relation["is_falling_back"] = False
        if in_reply_to:
            relation["m.in_reply_to"] = {"event_id": in_reply_to}
        content["m.relates_to"] = relation
    elif in_reply_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": in_reply_to}}
    return content


def content(reply: Reply) -> dict[str, Any]:
    """The content of a reply from the dispatcher, with the relations it carries."""
    return reply_content(
        reply,
        reply.language or DEFAULT_LANGUAGE,
        reply.in_reply_to,
        reply.mention,
        reply.thread_root,
    )


def rendered(reply: Reply) -> tuple[str, str, str]:
    """The reply as the outbox keeps it: (language, plain body, HTML body)."""
    language = reply.language or DEFAULT_LANGUAGE
    cached = reply._rendered
    if cached is not None and cached[:2] == (language, len(reply.blocks)):
        return language, cached[2], cached[3]
    plain, html = render_plain(reply, language), render_html(reply, language)
    reply._rendered = (language, len(reply.blocks), plain, html)
    return language, plain, html
