"""Paper ballots: a vote of an in-person meeting held on paper instead of online.

``!ballot paper`` decides it (services/paper_votes.py ``prepare_paper_vote``: after
that, no online ballot can be opened for the vote), says how the ballots are entered,
and sends the secretary a one-time link to the web companion's page for entering them
by direct message, never in the room (services/paper_sign_in.py). The operator's
``harmony ballots enter`` counts a CSV file of them too.
"""

from __future__ import annotations

from harmony_matrix.bot.commands.base import Command, Param, Request
from harmony_matrix.bot.replies import Code, Reply, Strong
from harmony_matrix.i18n import _, _n, verbatim
from harmony_matrix.services import assembly_rooms, paper_sign_in, paper_votes

SECRETARY = _("a secretary of the assembly, or the General Secretary")


async def ballot_paper_command(request: Request) -> Reply:
    ref = await assembly_rooms.meeting_here(
        request.ctx, request.event.room_id, request.args.get("ID")
    )
    plan = await paper_votes.prepare_paper_vote(request.ctx, request.person.matrix_id, ref)
    reply = Reply().say(
        Strong(
            _(
                "The vote of %(ref)s is held on paper. No online ballot can be opened for it.",
                ref=plan.meeting_ref,
            )
        )
    )
    if plan.withdrawn:
        reply.say(
            _n(
                "The online ballot was withdrawn before anyone voted: %(count)s voting link "
                "no longer works, and whoever was sent one is told.",
                "The online ballot was withdrawn before anyone voted: %(count)s voting links "
                "no longer work, and whoever was sent one is told.",
                plan.withdrawn,
            )
        )
    reply.say(
        _n(
            "Give one paper ballot to each person present who may vote: %(count)s person "
            "now, so at most %(count)s ballot.",
            "Give one paper ballot to each person present who may vote: %(count)s people "
            "now, so at most %(count)s ballots.",
            plan.most_ballots,
        )
    )
    reply.say(_("On the paper, each person gives every option a score from 0 (worst) to 5 (best):"))
    reply.items(verbatim(option.label) for option in plan.options)
    if await paper_sign_in.send_sign_in_link(
        request.ctx, request.person.matrix_id, plan.meeting_ref
    ):
        reply.say(
            _(
                "Then type the ballots in on a web page. Check your direct messages: I am "
                "sending you a link that signs you in to it. It works once, for two hours."
            )
        )
    reply.say(
        _(
            "Or type the ballots into a CSV file. Row 1 names the options, in this order; "
            "then one row of scores for each paper:"
        ),
        Code(verbatim(plan.header)),
    )
    return reply.say(
        _(
            "Whoever runs Harmony's server enters the file with this command, which counts "
            "the ballots and records the outcome:"
        ),
        Code(verbatim(plan.command)),
    )


BALLOT_PAPER = Command(
    name="ballot paper",
    usage=_("%(prefix)sballot paper [ID]"),
    summary=_(
        "Holds the vote of meeting ID, or of the meeting in this room, on paper, says how "
        "to enter the paper ballots and sends you a link to the page for them. An online "
        "ballot nobody has used yet is withdrawn."
    ),
    who=SECRETARY,
    handler=ballot_paper_command,
    params=(Param("ID", optional=True),),
    acts=True,
)

COMMANDS: tuple[Command, ...] = (BALLOT_PAPER,)
