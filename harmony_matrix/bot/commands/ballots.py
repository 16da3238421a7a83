"""The commands of the secret ballot: open it (links go by direct message), close and
count it, and its turnout.

Turnout is how many voted of how many may, never who: the database does not know.
"""

from __future__ import annotations

from harmony_matrix.bot.commands.base import Command, Param, Request
from harmony_matrix.bot.commands.info import ANYONE, SECRETARY
from harmony_matrix.bot.commands.meeting_args import meeting_meant
from harmony_matrix.bot.commands.member_text import member_text
from harmony_matrix.bot.commands.moments import parse_duration
from harmony_matrix.bot.replies import Reply
from harmony_matrix.i18n import Message, _, _n
from harmony_matrix.services import ballots
from harmony_matrix.services.ballots import RoundView
from harmony_matrix.services.preparation import when


def _turnout(view: RoundView) -> Message:
    return _n(
        "%(cast)s of %(count)s person has voted.",
        "%(cast)s of %(count)s people have voted.",
        view.eligible,
        cast=view.cast,
    )


async def ballot_open_command(request: Request) -> Reply:
    # The duration is checked before anything is looked up: a typing mistake is the
    # likeliest failure, and its message is the most useful.
    closes = request.options.get("closes")
    duration = parse_duration(closes) if closes is not None else None
    ref = await meeting_meant(request, request.args.get("ID"), under_way=True)
    closes_at = request.ctx.now() + duration if duration is not None else None
    view = await ballots.open_ballot(
        request.ctx, request.person.matrix_id, ref, closes_at=closes_at
    )
    reply = Reply()
    if view.closes_at is not None:
        reply.say(
            _(
                "The secret ballot of %(ref)s is open until %(when)s.",
                ref=ref,
                when=when(view.closes_at, request.ctx.party.timezone),
            )
        )
    else:
        reply.say(_("The secret ballot of %(ref)s is open.", ref=ref))
    return reply.say(
        _n(
            "%(count)s person is present and gets their own voting link in a direct message.",
            "%(count)s people are present. Each gets their own voting link in a direct message.",
            view.eligible,
        ),
        _("Anyone who answers the roll call while the ballot is open gets one too."),
    )


async def ballot_close_command(request: Request) -> Reply:
    ref = await meeting_meant(request, request.args.get("ID"), under_way=True)
    view = await ballots.close_ballot(request.ctx, request.person.matrix_id, ref)
    reply = Reply().say(_("The ballot of %(ref)s is closed and counted.", ref=ref), _turnout(view))
    winner = (view.result or {}).get("winner")
    if isinstance(winner, str):
        # A Thing's own room becomes read-only once its consensus is recorded.
        reply.rooms_changed = True
        return reply.say(_("The winner, now the consensus: %(option)s", option=member_text(winner)))
    return reply.say(_("There is no clear winner, so %(ref)s goes back to its debate.", ref=ref))


async def ballot_status_command(request: Request) -> Reply:
    ref = await meeting_meant(request, request.args.get("ID"), under_way=True)
    view = await ballots.round_status(request.ctx, ref)
    if view.result is not None:
        state = _("The ballot of %(ref)s (round %(round)s) is closed.", ref=ref, round=view.number)
    elif view.closes_at is not None:
        state = _(
            "The ballot of %(ref)s (round %(round)s) is open until %(when)s.",
            ref=ref,
            round=view.number,
            when=when(view.closes_at, request.ctx.party.timezone),
        )
    else:
        state = _("The ballot of %(ref)s (round %(round)s) is open.", ref=ref, round=view.number)
    return Reply().say(state, _turnout(view))


BALLOT_OPEN = Command(
    name="ballot open",
    usage=_("%(prefix)sballot open [ID] [--closes DURATION]"),
    summary=_(
        "Opens the secret ballot of meeting ID and sends everyone present their own voting "
        "link by direct message. DURATION is how long it stays open, like 90m, 36h, 2d or "
        "1d12h."
    ),
    who=SECRETARY,
    handler=ballot_open_command,
    params=(Param("ID", optional=True),),
    options=("closes",),
    acts=True,
)
BALLOT_CLOSE = Command(
    name="ballot close",
    usage=_("%(prefix)sballot close [ID]"),
    summary=_(
        "Closes the ballot of meeting ID at its closing time (or earlier once everyone has "
        "voted), counts it and announces the result."
    ),
    who=SECRETARY,
    handler=ballot_close_command,
    params=(Param("ID", optional=True),),
    acts=True,
)
BALLOT_STATUS = Command(
    name="ballot status",
    usage=_("%(prefix)sballot status [ID]"),
    summary=_("Shows how many have voted in the ballot of meeting ID, of how many may: never who."),
    who=ANYONE,
    handler=ballot_status_command,
    params=(Param("ID", optional=True),),
    needs_person=False,
)

COMMANDS: tuple[Command, ...] = (BALLOT_OPEN, BALLOT_CLOSE, BALLOT_STATUS)
