"""The commands of Party Thing petitions, and primary remit.

A petition that reaches its threshold calls its Party Thing by itself
(services/petitions.py): the reply says so and asks the bot to create the Thing's room.
"""

from __future__ import annotations

from harmony_matrix.bot.commands.base import Command, Param, Request
from harmony_matrix.bot.commands.member_text import member_text
from harmony_matrix.bot.replies import Code, Reply, Strong
from harmony_matrix.i18n import _, _n, calendar_day
from harmony_matrix.services import petitions, remits
from harmony_matrix.services.petitions import PetitionStatusView
from harmony_matrix.services.preparation import when

ANYONE = _("anyone")
MEMBER = _("a Member of the party (not a Participant) who is not suspended")
LEAD_SECRETARY = _("a secretary of the assembly that leads on the topic, or the General Secretary")


def _progress(reply: Reply, request: Request, view: PetitionStatusView) -> Reply:
    """How far the petition is, and what happens next."""
    share = f"{float(request.ctx.rules.petition_share * 100):g}"
    reply.say(
        _n(
            "%(signatures)s of %(count)s signature. The threshold is %(share)s%% of the "
            "%(members)s Members who were not suspended when the petition opened.",
            "%(signatures)s of %(count)s signatures. The threshold is %(share)s%% of the "
            "%(members)s Members who were not suspended when the petition opened.",
            view.progress.threshold,
            signatures=view.progress.signatures,
            share=share,
            members=view.members_at_opening,
        )
    )
    if view.party_thing_ref is not None and view.party_thing_by is not None:
        reply.say(
            Strong(
                _(
                    "It has reached its threshold and called Party Thing %(thing)s, which "
                    "must be held by %(day)s.",
                    thing=view.party_thing_ref,
                    day=calendar_day(view.party_thing_by),
                )
            )
        )
        if view.party_thing_starts_at is not None:
            reply.say(
                _(
                    "It is set for %(when)s.",
                    when=when(view.party_thing_starts_at, request.ctx.party.timezone),
                )
            )
        return reply
    if view.progress.reached:
        return reply.say(
            _("It has reached its threshold: the General Secretary calls the Party Thing.")
        )
    if not view.is_open:
        return reply.say(_("This petition is closed."))
    return reply.say(
        _("Still needed: %(missing)s. Members sign it with:", missing=view.progress.missing),
        Code(_("%(prefix)spetition sign %(ref)s", prefix=request.prefix, ref=view.ref)),
    )


def _called(reply: Reply, view: PetitionStatusView) -> Reply:
    # The Party Thing was called by this command: it needs a room of its own.
    if view.party_thing_ref is not None:
        reply.rooms_changed = True
    return reply


async def petition_start_command(request: Request) -> Reply:
    view = await petitions.start_petition(
        request.ctx,
        request.person.matrix_id,
        request.args["TITLE"],
        room_id=request.event.room_id,
    )
    reply = Reply().say(
        _(
            "Petition %(ref)s is open: “%(title)s”. You are its first signature.",
            ref=view.ref,
            title=member_text(view.title),
        )
    )
    return _called(_progress(reply, request, view), view)


async def petition_sign_command(request: Request) -> Reply:
    ref = await petitions.petition_meant(request.ctx, request.args.get("ID"))
    view = await petitions.sign_petition(request.ctx, request.person.matrix_id, ref)
    reply = Reply().say(
        _("You signed petition %(ref)s: “%(title)s”.", ref=view.ref, title=member_text(view.title))
    )
    return _called(_progress(reply, request, view), view)


async def petition_status_command(request: Request) -> Reply:
    ref = await petitions.petition_meant(request.ctx, request.args.get("ID"))
    view = await petitions.petition_status(request.ctx, ref)
    reply = Reply().say(
        Strong(_("%(ref)s: %(title)s", ref=view.ref, title=member_text(view.title)))
    )
    return _progress(reply, request, view)


async def remit_decline_command(request: Request) -> Reply:
    declined = await remits.decline_lead(
        request.ctx,
        request.person.matrix_id,
        request.args["TOPIC"],
        reason=request.options.get("reason", ""),
    )
    reply = Reply().say(
        _(
            "%(assembly)s no longer leads on “%(topic)s”.",
            assembly=declined.assembly,
            topic=declined.topic,
        )
    )
    if declined.new_lead is None:
        return reply.say(
            _("No assembly leads on it now, so no Moot on it makes Party Consensus until one does.")
        )
    return reply.say(
        _(
            "%(assembly)s leads on it now: its Moots on it make Party Consensus. Its "
            "secretaries are told.",
            assembly=declined.new_lead,
        )
    )


PETITION_START = Command(
    name="petition start",
    usage=_("%(prefix)spetition start TITLE"),
    summary=_(
        "Starts a petition for a Party Thing on TITLE, with you as its first signature. "
        "When enough Members sign, the Party Thing is called and this room is told."
    ),
    who=MEMBER,
    handler=petition_start_command,
    params=(Param("TITLE", rest=True),),
    acts=True,
)
PETITION_SIGN = Command(
    name="petition sign",
    usage=_("%(prefix)spetition sign [ID]"),
    summary=_(
        "Signs petition ID, or the one open petition. The signature that reaches the "
        "threshold calls the Party Thing."
    ),
    who=MEMBER,
    handler=petition_sign_command,
    params=(Param("ID", optional=True),),
    acts=True,
)
PETITION_STATUS = Command(
    name="petition status",
    usage=_("%(prefix)spetition status [ID]"),
    summary=_(
        "Shows how many have signed petition ID, or the one open petition, and how many "
        "it needs; once it has enough, the Party Thing it called and the day it must be "
        "held by."
    ),
    who=ANYONE,
    handler=petition_status_command,
    params=(Param("ID", optional=True),),
    needs_person=False,
)
REMIT_DECLINE = Command(
    name="remit decline",
    usage=_("%(prefix)sremit decline TOPIC [--reason TEXT]"),
    summary=_(
        "The assembly that leads on TOPIC declines to take the lead; the lead passes to "
        "the assembly named to take it instead, if there is one."
    ),
    who=LEAD_SECRETARY,
    handler=remit_decline_command,
    params=(Param("TOPIC", rest=True),),
    options=("reason",),
    acts=True,
)

COMMANDS: tuple[Command, ...] = (PETITION_START, PETITION_SIGN, PETITION_STATUS, REMIT_DECLINE)
