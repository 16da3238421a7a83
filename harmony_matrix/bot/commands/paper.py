"""Paper ballots: a vote of an in-person meeting held on paper instead of online.

``!ballot paper`` decides it (services/paper_votes.py ``prepare_paper_vote``: after
that, no online ballot can be opened for the vote) and says how the ballots are
entered. The page to enter them comes with the web companion; until then the
operator's ``harmony ballots enter`` counts them.
"""

from __future__ import annotations

from harmony_matrix.bot.commands.base import Command, Param, Request
from harmony_matrix.bot.replies import Code, Reply, Strong
from harmony_matrix.i18n import _, _n, verbatim
from harmony_matrix.services import assembly_rooms, paper_votes

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
    reply.say(
        _(
            "Then type the ballots into a CSV file. Row 1 names the options, in this order; "
            "then one row of scores for each paper:"
        ),
        Code(verbatim(plan.header)),
    )
    return reply.say(
        _(
            "Until Harmony has a web page for this, whoever runs Harmony's server enters "
            "the file with this command, which counts the ballots and records the outcome:"
        ),
        Code(verbatim(plan.command)),
    )


BALLOT_PAPER = Command(
    name="ballot paper",
    usage=_("%(prefix)sballot paper [ID]"),
    summary=_(
        "Holds the vote of meeting ID, or of the meeting in this room, on paper, and says "
        "how to enter the paper ballots. An online ballot nobody has used yet is withdrawn."
    ),
    who=SECRETARY,
    handler=ballot_paper_command,
    params=(Param("ID", optional=True),),
    acts=True,
)

COMMANDS: tuple[Command, ...] = (BALLOT_PAPER,)
