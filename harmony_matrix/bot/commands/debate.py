"""The commands of the discussion and the debate: suggestions, options, and the end of
the debate (consensus with one option, the vote with more).

A meeting's ID may be put first, or left out in the room where the meeting is under way.
"""

from __future__ import annotations

import re

from harmony_matrix.bot.commands.ballots import BALLOT_OPEN
from harmony_matrix.bot.commands.base import Command, Param, Request, UsageError
from harmony_matrix.bot.commands.info import ANYONE, SECRETARY
from harmony_matrix.bot.commands.meeting_args import (
    MAX_DIGITS,
    meeting_meant,
    missing,
    no_more,
    split_id,
)
from harmony_matrix.bot.commands.member_text import member_text
from harmony_matrix.bot.replies import Code, Reply
from harmony_matrix.errors import NotFound
from harmony_matrix.i18n import _, _n, list_of
from harmony_matrix.services import debate
from harmony_matrix.services.meetings import Phase

PARTICIPANT = _("anyone who may take part in the meeting")
OPTION_EDITOR = _("a secretary or moderator of the assembly, or the General Secretary")

_NUMBER = re.compile(r"[0-9]+")
#: The argument of ``!option merge``, named as in its usage line.
NUMBERS_AND_TEXT = "N M... TEXT"
#: The option numbers at the start of "!option merge 1 2 The merged text".
_NUMBERS = re.compile(r"(?:[0-9]+(?:\s+|$))+")


def option_number(request: Request, text: str) -> int:
    """An option's number as typed ("2"); anything else is refused with the usage."""
    if _NUMBER.fullmatch(text) is None:
        raise UsageError(
            _("“%(value)s” is not an option number: give the number, like 2.", value=text),
            [request.command],
        )
    return checked_number(text)


def checked_number(text: str) -> int:
    """An option number of a plausible size (a longer one would overflow the database's
    integers, and is no option of any meeting)."""
    if len(text.lstrip("0")) > MAX_DIGITS:
        raise NotFound(_("There is no option %(number)s in this meeting.", number=text))
    return int(text)


# !suggest


async def suggest_command(request: Request) -> Reply:
    ref, text = split_id(request.args["TEXT"])
    if not text:
        raise missing(request, "TEXT")
    ref = await meeting_meant(request, ref, under_way=True)
    number = await debate.add_suggestion(request.ctx, request.person.matrix_id, ref, text)
    return Reply().say(
        _(
            "Suggestion %(number)s for %(ref)s is written down: %(text)s",
            number=number,
            ref=ref,
            text=member_text(text.strip()),
        )
    )


# !debate, !vote


async def debate_command(request: Request) -> Reply:
    ref = await meeting_meant(request, request.args.get("ID"), under_way=True)
    await debate.start_debate(request.ctx, request.person.matrix_id, ref)
    return (
        Reply()
        .say(_("%(ref)s is in its debate phase now.", ref=ref))
        .say(
            _("A secretary or moderator now turns the suggestions into options. To add one, send:"),
            Code(request.usage(OPTION_ADD)),
        )
    )


async def vote_command(request: Request) -> Reply:
    ref = await meeting_meant(request, request.args.get("ID"), under_way=True)
    ended = await debate.end_debate(request.ctx, request.person.matrix_id, ref)
    if ended.phase is Phase.CONSENSUS:
        # A Thing's own room becomes read-only once its consensus is recorded.
        return Reply(rooms_changed=True).say(
            _(
                "The debate of %(ref)s ended with one option, so it is the consensus. It is "
                "now in the record of consensus.",
                ref=ref,
            )
        )
    options = await debate.active_options(request.ctx, ref)
    return Reply().say(
        _n(
            "The debate of %(ref)s ended with %(count)s option, so it goes to a secret vote.",
            "The debate of %(ref)s ended with %(count)s options, so it goes to a secret vote.",
            len(options),
            ref=ref,
        ),
        _("Open the ballot with:"),
        Code(request.usage(BALLOT_OPEN)),
    )


# !option add, !option merge, !option withdraw, !options


async def option_add_command(request: Request) -> Reply:
    ref, text = split_id(request.args.get("TEXT", ""))
    if not text:
        raise missing(request, "TEXT")
    ref = await meeting_meant(request, ref, under_way=True)
    number = await debate.add_option(request.ctx, request.person.matrix_id, ref, text)
    return Reply().say(
        _(
            "Option %(number)s of %(ref)s: %(text)s",
            number=number,
            ref=ref,
            text=member_text(text.strip()),
        )
    )


async def option_merge_command(request: Request) -> Reply:
    ref, rest = split_id(request.args.get(NUMBERS_AND_TEXT, ""))
    # The numbers first, then the merged option's text as typed, its spacing kept.
    numbers_typed = _NUMBERS.match(rest)
    typed = numbers_typed.group().split() if numbers_typed else []
    numbers = [checked_number(word) for word in typed]
    text = rest[numbers_typed.end() :] if numbers_typed else rest
    if len(numbers) < 2:
        raise UsageError(
            _("Give the numbers of at least two options, then the text of the merged option."),
            [request.command],
        )
    if not text.strip():
        raise missing(request, "TEXT")
    ref = await meeting_meant(request, ref, under_way=True)
    merged = await debate.merge_options(request.ctx, request.person.matrix_id, ref, numbers, text)
    return Reply().say(
        _(
            "Options %(sources)s of %(ref)s are merged into option %(number)s: %(text)s",
            sources=list_of(dict.fromkeys(numbers)),
            ref=ref,
            number=merged,
            text=member_text(text.strip()),
        )
    )


async def option_withdraw_command(request: Request) -> Reply:
    ref, rest = split_id(request.args.get("N", ""))
    values = rest.split()
    if not values:
        raise missing(request, "N")
    no_more(request, values[1:])
    number = option_number(request, values[0])
    ref = await meeting_meant(request, ref, under_way=True)
    await debate.withdraw_option(request.ctx, request.person.matrix_id, ref, number)
    return Reply().say(_("Option %(number)s of %(ref)s is withdrawn.", number=number, ref=ref))


async def options_command(request: Request) -> Reply:
    ref = await meeting_meant(request, request.args.get("ID"), under_way=True)
    options = await debate.active_options(request.ctx, ref)
    if not options:
        return Reply().say(_("%(ref)s has no options yet.", ref=ref))
    return (
        Reply()
        .say(
            _n(
                "%(ref)s has %(count)s option:",
                "%(ref)s has %(count)s options:",
                len(options),
                ref=ref,
            )
        )
        .items(
            _("%(number)s. %(text)s", number=option.number, text=member_text(option.text))
            for option in options
        )
    )


SUGGEST = Command(
    name="suggest",
    usage=_("%(prefix)ssuggest TEXT"),
    summary=_(
        "Writes down your suggestion in the meeting under way in this room, during the "
        "discussion and the debate. Put the meeting's ID first if several are under way."
    ),
    who=PARTICIPANT,
    handler=suggest_command,
    params=(Param("TEXT", rest=True),),
    acts=True,
)
DEBATE = Command(
    name="debate",
    usage=_("%(prefix)sdebate [ID]"),
    summary=_("Ends the discussion of meeting ID and opens its debate."),
    who=SECRETARY,
    handler=debate_command,
    params=(Param("ID", optional=True),),
    acts=True,
)
OPTION_ADD = Command(
    name="option add",
    usage=_("%(prefix)soption add TEXT"),
    summary=_(
        "Adds an option to the debate under way in this room. Put the meeting's ID first "
        "if several are under way."
    ),
    who=OPTION_EDITOR,
    handler=option_add_command,
    # Checked by the handler, so that the answer shows this command's usage only.
    params=(Param("TEXT", optional=True, rest=True),),
    acts=True,
)
OPTION_MERGE = Command(
    name="option merge",
    usage=_("%(prefix)soption merge N M... TEXT"),
    summary=_("Merges the options numbered N, M and more into one new option with the text TEXT."),
    who=OPTION_EDITOR,
    handler=option_merge_command,
    params=(Param(NUMBERS_AND_TEXT, optional=True, rest=True),),
    acts=True,
)
OPTION_WITHDRAW = Command(
    name="option withdraw",
    usage=_("%(prefix)soption withdraw N"),
    summary=_("Withdraws option N from the debate under way in this room."),
    who=OPTION_EDITOR,
    handler=option_withdraw_command,
    params=(Param("N", optional=True, rest=True),),
    acts=True,
)
OPTIONS = Command(
    name="options",
    usage=_("%(prefix)soptions [ID]"),
    summary=_("Lists the options of meeting ID, or of the meeting under way in this room."),
    who=ANYONE,
    handler=options_command,
    params=(Param("ID", optional=True),),
    needs_person=False,
)
VOTE = Command(
    name="vote",
    usage=_("%(prefix)svote [ID]"),
    summary=_(
        "Ends the debate of meeting ID: with one option it is the consensus; with two or "
        "more, they go to a secret vote."
    ),
    who=SECRETARY,
    handler=vote_command,
    params=(Param("ID", optional=True),),
    acts=True,
)

COMMANDS: tuple[Command, ...] = (
    SUGGEST,
    DEBATE,
    OPTION_ADD,
    OPTION_MERGE,
    OPTION_WITHDRAW,
    OPTIONS,
    VOTE,
)
