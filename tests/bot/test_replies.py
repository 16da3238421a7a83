"""Replies: a plain body that reads well aloud, escaped HTML, mentions only on purpose."""

from __future__ import annotations

from sqlalchemy import update

from harmony_matrix.bot.commands import quote
from harmony_matrix.bot.replies import (
    Code,
    Reply,
    Strong,
    content,
    render,
    render_html,
    render_plain,
    rendered,
    reply_content,
)
from harmony_matrix.i18n import _, verbatim
from harmony_matrix.storage.models import Assembly
from tests.services.helpers import ANA, MEDIA

from .conftest import MEDIA_ROOM, html, matrix_content, plain

HOSTILE = '<script>alert("x")</script> @room <a href="https://matrix.to/#/@eve:evil.org">Eve</a>'


def test_plain_and_html_bodies_of_lines_and_lists():
    reply = (
        Reply()
        .say(_("Usage:"), Code(verbatim("!help [COMMAND]")))
        .items([verbatim("one"), verbatim("two")])
        .say(Strong(verbatim("done")))
    )
    assert render_plain(reply, "en") == "Usage: !help [COMMAND]\n- one\n- two\ndone"
    assert render_html(reply, "en") == (
        "<p>Usage: <code>!help [COMMAND]</code></p><ul><li>one</li><li>two</li></ul>"
        "<p><strong>done</strong></p>"
    )
    assert Reply().items([]).blocks == []


def test_every_text_is_escaped_in_html_and_left_as_text_in_the_plain_body():
    reply = Reply().say(_("Purpose: %(purpose)s", purpose=HOSTILE)).say(Code(verbatim("a<b\nc")))
    body = render(reply, "en")
    assert body["body"] == f"Purpose: {HOSTILE}\na<b\nc"
    assert "<script>" not in body["formatted_body"]
    assert "<a " not in body["formatted_body"]
    assert '&lt;script&gt;alert("x")&lt;/script&gt;' in body["formatted_body"]
    assert "<code>a&lt;b<br>c</code>" in body["formatted_body"]
    # Nobody is pinged by a notice unless named in m.mentions: not @room, not Eve.
    assert body["m.mentions"] == {}
    assert body["msgtype"] == "m.notice"
    assert body["format"] == "org.matrix.custom.html"


def test_a_reply_relates_to_the_command_and_mentions_only_its_sender():
    reply = Reply().say(verbatim(HOSTILE))
    built = reply_content(reply, "en", "$command", ANA)
    assert built["m.relates_to"] == {"m.in_reply_to": {"event_id": "$command"}}
    assert built["m.mentions"] == {"user_ids": [ANA]}
    in_thread = reply_content(reply, "en", "$command", ANA, thread_root="$root")
    assert in_thread["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$root",
        "is_falling_back": False,
        "m.in_reply_to": {"event_id": "$command"},
    }
    assert "m.relates_to" not in reply_content(reply, "en", None, None)


async def test_a_members_text_in_a_command_comes_back_escaped_and_pings_nobody(chat):
    reply = await chat.ask(ANA, f"!consensus {quote(HOSTILE)}")
    built = matrix_content(reply)
    assert built["m.mentions"] == {"user_ids": [ANA]}
    assert built["m.relates_to"]["m.in_reply_to"]["event_id"] == reply.in_reply_to
    assert "<script>" not in built["formatted_body"] and "<a " not in built["formatted_body"]
    assert "&lt;script&gt;" in built["formatted_body"]
    assert plain(reply).startswith('There is no assembly called “<script>alert("x")</script>')


async def test_an_assembly_name_with_markup_is_shown_as_text(media_room):
    async with media_room.ctx.transaction() as session:
        await session.execute(
            update(Assembly).where(Assembly.slug == MEDIA).values(name="<b>Media</b> @room")
        )
    reply = await media_room.ask(ANA, "!assembly", room=MEDIA_ROOM)
    assert "<strong>&lt;b&gt;Media&lt;/b&gt; @room (HPUK-" in html(reply)
    assert plain(reply).startswith("<b>Media</b> @room (HPUK-")
    assert content(reply)["m.mentions"] == {"user_ids": [ANA]}


def test_the_rendered_strings_for_the_outbox():
    reply = Reply(language="fr").say(_("There is no meeting %(ref)s.", ref="<M-1>"))
    assert rendered(reply) == (
        "fr",
        "La réunion <M-1> n'existe pas.",
        "<p>La réunion &lt;M-1&gt; n'existe pas.</p>",
    )
    assert rendered(Reply().say(verbatim("x")))[0] == "en"
