"""The dispatcher: every command gets an answer in the sender's language, refusals
included; failures become an error ID, never a traceback."""

from __future__ import annotations

import logging
import re

import pytest

from harmony_matrix.bot import replies
from harmony_matrix.bot.commands import (
    BotCommandSettings,
    Command,
    CommandEvent,
    Dispatcher,
    Param,
    default_commands,
    dispatch,
)
from harmony_matrix.errors import InvalidInput, RuleViolation
from harmony_matrix.i18n import _
from harmony_matrix.services import people
from tests.services.helpers import ANA, BRYN, CHLOE, IRIS, JON

from .conftest import MEDIA_ROOM, Chat, plain


def _raising(error: Exception):
    async def handler(request):
        raise error

    return handler


def _chat_with(ctx, *commands: Command) -> Chat:
    return Chat(ctx, Dispatcher([*default_commands(), *commands], BotCommandSettings()))


def _command(name: str, handler, **fields) -> Command:
    return Command(
        name=name,
        usage=_("%(prefix)s" + name + " ID"),
        summary=_("A test command."),
        who=_("anyone"),
        handler=handler,
        params=(Param("ID", optional=True),),
        **fields,
    )


async def test_a_message_that_is_not_a_command_gets_no_reply(chat):
    for body in ("hello", "!!!", "! help", "", "see !help"):
        assert await chat.send(ANA, body) is None


async def test_the_module_level_dispatch_answers_with_the_default_commands(demo):
    event = CommandEvent("$1", MEDIA_ROOM, ANA, "!whoami")
    reply = await dispatch(demo, BotCommandSettings(), event)
    assert reply is not None and reply.in_reply_to == "$1" and reply.mention == ANA
    assert await dispatch(demo, BotCommandSettings(), CommandEvent("$2", "!r", ANA, "hi")) is None


async def test_a_reply_stays_in_the_commands_thread(chat):
    reply = await chat.send(ANA, "!whoami", thread="$root")
    assert reply is not None and reply.thread_root == "$root"
    assert replies.content(reply)["m.relates_to"]["rel_type"] == "m.thread"


async def test_an_unexpected_failure_is_answered_with_an_error_id_that_the_log_has(demo, caplog):
    chat = _chat_with(demo, _command("boom", _raising(RuntimeError("secret detail"))))
    with caplog.at_level(logging.ERROR, logger="harmony_matrix.bot.commands.dispatch"):
        text = plain(await chat.ask(ANA, "!boom"))
    found = re.fullmatch(
        r"Something went wrong on our side \(error ID ([0-9a-f]{8})\)\. Please try again "
        r"later; if it keeps happening, give the error ID to your secretary\.",
        text,
    )
    assert found, text
    assert "secret detail" not in text and "Traceback" not in text
    [record] = caplog.records
    assert found.group(1) in record.getMessage() and "boom" in record.getMessage()
    assert record.exc_info is not None


async def test_a_failing_database_is_answered_too(demo, monkeypatch):
    async def broken(ctx, matrix_id):
        raise ConnectionError("database is down")

    monkeypatch.setattr(people, "sender", broken)
    chat = _chat_with(demo)
    text = plain(await chat.ask(ANA, "!help"))
    assert text.startswith("Something went wrong on our side (error ID ")


async def test_a_domain_error_is_answered_with_its_message_and_usage_where_input_was_wrong(demo):
    chat = _chat_with(
        demo,
        _command("bad", _raising(InvalidInput(_("That ID is wrong.")))),
        _command("rule", _raising(RuleViolation(_("Too early.")))),
    )
    assert plain(await chat.ask(ANA, "!bad M-1")) == "That ID is wrong.\nUsage: !bad ID"
    assert plain(await chat.ask(ANA, "!rule")) == "Too early."


async def test_a_message_that_cannot_be_rendered_is_caught_like_any_failure(demo):
    async def bad_message(request):
        return replies.Reply().say(_("%(missing)s is missing", present=1))

    chat = _chat_with(demo, _command("render", bad_message))
    reply = await chat.ask(ANA, "!render")
    assert plain(reply).startswith("Something went wrong on our side (error ID ")


async def test_replies_are_in_the_senders_language(chat):
    # Chloé reads French: a message the French catalog has comes back in French.
    reply = await chat.ask(CHLOE, "!assembly link nowhere")
    assert reply.language == "fr"
    assert plain(reply).splitlines()[0] == "Il n'y a pas d'assemblée nommée « nowhere »."
    # Bryn reads Welsh, which has no catalog yet: English words, Welsh dates and lists.
    assert (await chat.ask(BRYN, "!whoami")).language == "cy"
    # Someone not on the register is answered in the party's language.
    assert (await chat.ask("@new:example.org", "!help")).language == "en"


async def test_an_unknown_command_is_answered_in_the_senders_language(chat):
    reply = await chat.ask(CHLOE, "!qorum")
    assert reply.language == "fr"


async def test_a_suspended_member_may_read_but_not_act(demo):
    acted = []

    async def act(request):
        acted.append(request.event.sender)
        return replies.Reply().say(_("Done."))

    chat = _chat_with(demo, _command("act", act, acts=True))
    for who in (IRIS, JON):
        text = plain(await chat.ask(who, "!act"))
        assert text.startswith("Sorry, you are suspended until ")
    assert "until further notice" in plain(await chat.ask(JON, "!act"))
    assert acted == []
    for body in ("!help", "!whoami", "!language en", "!assembly", "!consensus"):
        assert not plain(await chat.ask(IRIS, body)).startswith("Sorry, you are suspended")
    assert plain(await chat.ask(ANA, "!act")) == "Done."
    assert acted == [ANA]


@pytest.mark.parametrize("prefix", ["", "   "])
def test_the_prefix_cannot_be_empty(prefix):
    with pytest.raises(ValueError, match="prefix"):
        BotCommandSettings(prefix=prefix)


def test_settings_from_the_configuration():
    from harmony_matrix.config import load_config

    config = load_config(None, {"HARMONY_MATRIX__COMMAND_PREFIX": "?"})
    assert BotCommandSettings.from_config(config).prefix == "?"
