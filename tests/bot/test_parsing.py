"""The command line's grammar (DESIGN.md section 7), without a database."""

from __future__ import annotations

import pytest

from harmony_matrix.bot.commands import (
    Command,
    CommandSet,
    Param,
    UsageError,
    default_commands,
    quote,
    tokenize,
    usage_line,
)
from harmony_matrix.bot.commands.parsing import command_text, strip_reply_fallback
from harmony_matrix.i18n import _


async def _nothing(request):  # pragma: no cover - never run: these tests only parse
    raise AssertionError


def _command(name: str, *params: Param, options: tuple[str, ...] = ()) -> Command:
    return Command(
        name=name,
        usage=_("%(prefix)s" + name),
        summary=_("A test command."),
        who=_("anyone"),
        handler=_nothing,
        params=params,
        options=options,
    )


THING = _command("thing call", Param("QUESTION", rest=True), options=("assemblies",))
SCHEDULE = _command(
    "schedule", Param("ID"), Param("DAY"), Param("TIME"), options=("place", "online")
)
LINK = _command("assembly link", Param("SLUG"))
ASSEMBLY = _command("assembly")
HELP = _command("help", Param("COMMAND", optional=True, rest=True))
COMMANDS = CommandSet([THING, SCHEDULE, LINK, ASSEMBLY, HELP])


def parse(body: str):
    parsed = COMMANDS.parse("!", body)
    assert parsed is not None
    return parsed


def refusal(body: str) -> tuple[str, list[str]]:
    with pytest.raises(UsageError) as caught:
        COMMANDS.parse("!", body)
    return str(caught.value.message), [command.name for command in caught.value.commands]


@pytest.mark.parametrize(
    "body", ["hello", "", "!", "!!!", "! help", "!1", " ", "I said !help", "!\nhelp"]
)
def test_chat_is_not_a_command(body):
    assert COMMANDS.parse("!", body) is None


def test_names_of_one_or_two_words_in_any_case():
    assert parse("!Assembly LINK owg").command is LINK
    assert parse("!assembly").command is ASSEMBLY
    assert parse("  !HELP").command is HELP


def test_free_text_is_the_rest_of_the_line_as_typed():
    parsed = parse('!thing call  Should we "really"   meet,  --soon?  ')
    assert parsed.args == {"QUESTION": 'Should we "really"   meet,  --soon?'}
    assert parse("!help assembly link").args == {"COMMAND": "assembly link"}
    assert parse("!help").args == {}


def test_options_are_taken_out_of_the_free_text_wherever_they_are():
    after = parse("!thing call Shall we merge? --assemblies owg,media")
    assert after.args == {"QUESTION": "Shall we merge?"}
    assert after.options == {"assemblies": "owg,media"}
    before = parse("!thing call --ASSEMBLIES owg,media Shall we merge?")
    assert (before.args, before.options) == (after.args, after.options)
    middle = parse("!thing call Shall we --assemblies owg merge?")
    assert middle.args == {"QUESTION": "Shall we merge?"}


def test_quoted_arguments_and_option_values_keep_their_spaces():
    parsed = parse(
        '!schedule M-3 2026-12-01 18:30 --place "Community Hall, 1 High St" --online “a b”'
    )
    assert parsed.args == {"ID": "M-3", "DAY": "2026-12-01", "TIME": "18:30"}
    assert parsed.options == {"place": "Community Hall, 1 High St", "online": "a b"}
    assert parse("!assembly link «Media Working Group»").args == {"SLUG": "Media Working Group"}
    assert parse('!assembly link "--place"').args == {"SLUG": "--place"}
    # A phone's keyboard turns "--" into a dash as you type.
    assert parse("!schedule M-3 a b —place Hall –online x").options == {
        "place": "Hall",
        "online": "x",
    }


def test_missing_and_extra_arguments_say_what_was_wrong_and_give_the_usage():
    assert refusal("!schedule M-3 2026-12-01") == ("TIME is missing.", ["schedule"])
    assert refusal("!schedule M-3 a b c d") == ("“c d” was not expected here.", ["schedule"])
    assert refusal("!thing call") == ("QUESTION is missing.", ["thing call"])
    assert refusal("!thing call --assemblies owg") == ("QUESTION is missing.", ["thing call"])
    # A family's usage lines come together.
    assert refusal("!assembly link") == ("SLUG is missing.", ["assembly link", "assembly"])


def test_option_mistakes():
    assert refusal("!schedule M-3 a b --room 4") == (
        "!schedule has no option --room.",
        ["schedule"],
    )
    assert refusal("!schedule M-3 a b --place") == ("--place needs a value.", ["schedule"])
    assert refusal("!schedule M-3 a b --place x --place y") == (
        "--place is given twice.",
        ["schedule"],
    )
    assert refusal('!schedule M-3 a b --place "x') == (
        "A quote is not closed: “x”.",
        ["schedule"],
    )


def test_an_unclosed_quote_is_an_error_in_an_argument_but_text_in_free_text():
    assert refusal('!assembly link "Media') == (
        "A quote is not closed: “Media”.",
        ["assembly link", "assembly"],
    )
    assert parse('!thing call Is "it right?').args == {"QUESTION": 'Is "it right?'}


def test_unknown_commands_suggest_the_closest_one():
    assert refusal("!shedule M-3") == (
        "There is no command !shedule. Did you mean !schedule?",
        ["schedule"],
    )
    assert refusal("!thnig call X") == (
        "There is no command !thnig. Did you mean !thing call?",
        ["thing call"],
    )
    assert refusal("!thing cal X") == (
        "There is no command !thing cal. Did you mean !thing call?",
        ["thing call"],
    )
    assert refusal("!thing") == ("There is no command !thing.", ["thing call"])
    assert refusal("!xyzzy") == (
        "There is no command !xyzzy. Send !help for the list of commands.",
        [],
    )


def test_a_client_s_reply_fallback_is_not_part_of_the_command():
    body = "> <@ana:harmony.uk> the meeting is at six\n> second line\n\n!assembly"
    assert strip_reply_fallback(body) == "!assembly"
    assert parse(body).command is ASSEMBLY
    assert strip_reply_fallback("> quoting myself\n!assembly") == "> quoting myself\n!assembly"
    assert command_text("!", "> <@a:b> x\n!help") is None  # no empty line: not a fallback


def test_tokens_and_quoting():
    assert [t.value for t in tokenize(' a  "b c" “d e” „f“ «g h»  ')] == [
        "a",
        "b c",
        "d e",
        "f",
        "g h",
    ]
    assert quote("plain") == "plain"
    assert quote("two words") == '"two words"'
    assert quote('say "hi" now') == '“say "hi" now”'
    assert quote("") == '""'
    assert quote("--place") == '"--place"'
    assert quote("—place") == '"—place"'


def test_two_commands_cannot_share_a_name():
    with pytest.raises(ValueError, match="same name"):
        CommandSet([ASSEMBLY, ASSEMBLY])


@pytest.mark.parametrize("command", default_commands(), ids=lambda c: c.name)
def test_each_usage_line_names_the_command_and_all_it_takes(command):
    """The usage line is the command's documentation: it must not disagree with it."""
    line = usage_line(command, "!").render("en")
    assert line.startswith(f"!{command.name}")
    for param in command.params:
        assert param.name in line
    for option in command.options:
        assert f"--{option}" in line
    assert command.summary.render("en").endswith(".")
