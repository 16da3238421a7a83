"""Properties of the command line: quoted arguments and options come back as they were
written, and no message at all makes the dispatcher raise or stay silent."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harmony_matrix.bot.commands import (
    Command,
    CommandSet,
    Param,
    UsageError,
    default_commands,
    quote,
    tokenize,
)
from harmony_matrix.bot.commands.parsing import QUOTES
from harmony_matrix.bot.replies import content
from harmony_matrix.i18n import _
from tests.services.helpers import ANA, CHLOE, IRIS

from .conftest import MEDIA_ROOM, OTHER_ROOM


async def _nothing(request):  # pragma: no cover - only parsed
    raise AssertionError


SCHEDULE = Command(
    name="schedule",
    usage=_("%(prefix)sschedule ID DAY [--place TEXT] [--online URL] TEXT"),
    summary=_("A test command."),
    who=_("anyone"),
    handler=_nothing,
    params=(Param("ID"), Param("DAY"), Param("TEXT", rest=True)),
    options=("place", "online"),
)
COMMANDS = CommandSet([SCHEDULE])

#: Any text that quote() can quote: not every kind of closing quote at once.
values = st.text().filter(lambda v: any(closing not in v for closing in QUOTES.values()))


def _free_text_ok(text: str) -> bool:
    """Free text that is really free: something in it, and no option names in it."""
    words = [token.value.lower() for token in tokenize(text) if not token.quoted]
    options = [word for word in words if word[:1] in "-—–"]
    return bool(text.strip()) and not any(
        word.lstrip("-—–") in ("place", "online") for word in options
    )


@settings(max_examples=300)
@given(
    ident=values,
    day=values,
    place=st.none() | values,
    online=st.none() | values,
    free=st.text().filter(_free_text_ok),
    options_first=st.booleans(),
)
def test_quoted_arguments_and_options_round_trip(ident, day, place, online, free, options_first):
    options = {name: value for name, value in (("place", place), ("online", online)) if value}
    written = [f"--{name} {quote(value)}" for name, value in options.items()]
    middle = " ".join([quote(ident), quote(day), *written] if options_first else [])
    body = f"!schedule {middle} {free}" if options_first else None
    if body is None:
        # Options may also follow the free text, as in !thing call QUESTION --assemblies A.
        assume(not any(c in QUOTES for c in free))  # an open quote would take them in
        body = " ".join(["!schedule", quote(ident), quote(day), free, *written])
    parsed = COMMANDS.parse("!", body)
    assert parsed is not None
    assert parsed.args == {"ID": ident, "DAY": day, "TEXT": free.strip()}
    assert parsed.options == options


@given(st.text())
def test_any_text_is_either_not_a_command_a_command_or_a_usage_error(text):
    commands = CommandSet(default_commands())
    for body in (text, f"!{text}", f"!help {text}", f"!assembly {text}"):
        try:
            commands.parse("!", body)
        except UsageError as error:
            said = error.message.render("en")
        else:
            said = "parsed"
        assert said


names = st.sampled_from([command.name for command in default_commands()])
bodies = st.one_of(
    st.text(),
    st.builds(lambda text: f"!{text}", st.text()),
    st.builds(lambda name, text: f"!{name} {text}", names, st.text()),
    st.builds(
        lambda name, words: " ".join([f"!{name}", *map(quote, words)]),
        names,
        st.lists(values, max_size=3),
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=bodies,
    sender=st.sampled_from([ANA, CHLOE, IRIS, "@stranger:elsewhere.org"]),
    room=st.sampled_from([MEDIA_ROOM, OTHER_ROOM]),
)
async def test_no_message_makes_the_dispatcher_raise_or_stay_silent(media_room, body, sender, room):
    reply = await media_room.send(sender, body, room)
    if reply is None:
        assert not media_room.dispatcher.is_command(body)
        return
    built = content(reply)
    assert built["body"].strip()
    assert built["m.mentions"] == {"user_ids": [sender]}
    assert "Traceback" not in built["body"]
    # Something went wrong on our side only for bugs: no generated input is one.
    assert "error ID" not in built["body"], built["body"]
