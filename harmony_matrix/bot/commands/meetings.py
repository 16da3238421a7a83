"""The commands of calling, scheduling, preparing and opening meetings, and the roll call.

Replies are short acknowledgements: the services announce a phase change in the
meeting's room and keep its pinned state up to date, so a reply says what was done and
what comes next. A meeting's ID may be left out in the room where it is held
(``meeting_args``).
"""

from __future__ import annotations

from harmony_matrix.bot.commands.base import Command, Param, Request, UsageError
from harmony_matrix.bot.commands.info import ASSEMBLY_LINK, SECRETARY
from harmony_matrix.bot.commands.meeting_args import (
    meeting_meant,
    missing,
    no_more,
    positional,
    shift_id,
    split_id,
)
from harmony_matrix.bot.commands.member_text import member_text
from harmony_matrix.bot.commands.moments import local_moment, parse_date, parse_time
from harmony_matrix.bot.commands.parsing import tokenize
from harmony_matrix.bot.commands.quorum_text import say_meeting_quorum
from harmony_matrix.bot.replies import Code, Reply
from harmony_matrix.i18n import _, _n, list_of
from harmony_matrix.services import (
    assembly_rooms,
    meetings,
    people,
    preparation,
    roll_call,
    things,
)
from harmony_matrix.services.meetings import MeetingSummary
from harmony_matrix.services.preparation import PreparationStep

MOOT_CALLER = _(
    "a member of the assembly, or the General Secretary (the party's rules may leave it "
    "to secretaries)"
)
THING_CALLER = _("a secretary of the assemblies involved, or the General Secretary")
THING_AGREER = _("a secretary of an assembly involved, or the General Secretary")
ATTENDEE = _("anyone who may take part, for themselves; a secretary or moderator, for someone else")

#: Whom ``!here`` records: a Matrix ID or a display name (the usage line shows both).
PERSON = "@user:server"
#: The words of ``!prepare`` for the two steps it records.
PREPARATION_STEPS = {
    "facts": PreparationStep.FACTS,
    "materials": PreparationStep.MATERIALS,
}


# !moot call


async def moot_call_command(request: Request) -> Reply:
    assembly = await assembly_rooms.assembly_of_room(request.ctx, request.event.room_id)
    if assembly is None:
        return (
            Reply()
            .say(
                _(
                    "A Moot is called in the room of its assembly, and this room is not an "
                    "assembly's room. Send this command in your assembly's room."
                )
            )
            .say(
                _("A secretary can make this room their assembly's room with:"),
                Code(request.usage(ASSEMBLY_LINK)),
            )
        )
    called = await meetings.call_moot(
        request.ctx,
        request.person.matrix_id,
        assembly.slug,
        request.args["QUESTION"],
        topic=request.options.get("topic"),
    )
    reply = Reply().say(
        _(
            "Assembly Moot %(ref)s of %(assembly)s will meet. It will decide: %(question)s",
            ref=called.ref,
            assembly=assembly.name,
            question=member_text(called.question),
        )
    )
    if called.topic:
        reply.say(_("Its topic: %(topic)s", topic=member_text(called.topic)))
    reply.say(_("A secretary of the group gets it ready here. These are the commands to use:"))
    return reply.items(
        Code(request.usage(command)) for command in (PREPARE, SCHEDULE, NOTIFY, START)
    )


# !thing call, !thing agree


def _agreement(request: Request, reply: Reply, thing: MeetingSummary) -> Reply:
    """Who has still to agree to a Thing of Assemblies, and how they do."""
    # The Thing's room is made, and everyone invited, as soon as the reply is sent.
    reply.rooms_changed = True
    if not thing.awaiting:
        return reply.say(
            _("Every assembly involved has agreed to %(ref)s: it can be planned.", ref=thing.ref)
        )
    return reply.say(
        _n(
            "It waits for %(assemblies)s to agree. A secretary of it agrees with:",
            "It waits for %(assemblies)s to agree. A secretary of each agrees with:",
            len(thing.awaiting),
            assemblies=list_of(thing.awaiting),
        ),
        Code(_("%(prefix)sthing agree %(ref)s", prefix=request.prefix, ref=thing.ref)),
    )


async def thing_call_command(request: Request) -> Reply:
    listed = request.options.get("assemblies")
    if listed is None:
        raise UsageError(
            _("Say which assemblies hold the Thing together, with --assemblies A,B."),
            [request.command],
        )
    called = await meetings.call_thing(
        request.ctx, request.person.matrix_id, listed.split(","), request.args["QUESTION"]
    )
    reply = Reply().say(
        _(
            "Thing of Assemblies %(ref)s of %(assemblies)s will meet. It will decide: %(question)s",
            ref=called.ref,
            assemblies=list_of(called.assemblies),
            question=member_text(called.question),
        )
    )
    reply.say(_("It gets a room of its own, and everyone who may take part is invited to it."))
    return _agreement(request, reply, called)


async def thing_agree_command(request: Request) -> Reply:
    ref = await meeting_meant(request, request.args.get("ID"))
    agreed = await things.agree_to_thing(request.ctx, request.person.matrix_id, ref)
    reply = Reply().say(
        _(
            "%(ref)s now has the agreement of %(assemblies)s.",
            ref=agreed.ref,
            assemblies=list_of(agreed.agreed),
        )
    )
    return _agreement(request, reply, agreed)


# !prepare


async def prepare_command(request: Request) -> Reply:
    ref, rest = split_id(request.args.get("TEXT", ""))
    words = rest.split(maxsplit=1)
    if not words:
        raise UsageError(_("Say which step: facts or materials, then the text."), [request.command])
    word, note = words[0], words[1] if len(words) > 1 else ""
    step = PREPARATION_STEPS.get(word.lower())
    if step is None:
        raise UsageError(
            _("“%(word)s” is not a step: write facts or materials.", word=word), [PREPARE]
        )
    if not note.strip():
        raise missing(request, "TEXT")
    ref = await meeting_meant(request, ref)
    await preparation.record_preparation(request.ctx, request.person.matrix_id, ref, step, note)
    if step is PreparationStep.FACTS:
        return Reply().say(_("The facts for %(ref)s are recorded.", ref=ref))
    return Reply().say(_("The materials for %(ref)s are recorded.", ref=ref))


# !schedule


async def schedule_command(request: Request) -> Reply:
    ref, values = shift_id(positional(request, "ID", "YYYY-MM-DD", "HH:MM"))
    if not values:
        raise missing(request, "YYYY-MM-DD")
    if len(values) < 2:
        raise missing(request, "HH:MM")
    no_more(request, values[2:])
    timezone = request.ctx.party.timezone
    starts_at = local_moment(parse_date(values[0]), parse_time(values[1]), timezone)
    ref = await meeting_meant(request, ref)
    options = request.options
    result = await preparation.schedule(
        request.ctx,
        request.person.matrix_id,
        ref,
        starts_at,
        place=options.get("place", ""),
        online_url=options.get("online", ""),
        accessibility=options.get("access", ""),
        route_help=options.get("route", ""),
        reason=options.get("reason", ""),
    )
    reply = Reply().say(
        _(
            "%(ref)s is set for %(when)s.",
            ref=ref,
            when=preparation.when(starts_at, timezone),
        )
    )
    # Scheduling is allowed while planning, or after a vote with no clear winner.
    if result.meeting.vote_round >= 1:
        return reply.say(
            _(
                "The debate and the vote continue on that day. Tell everyone eligible, "
                "with your reason, by sending:"
            ),
            Code(request.usage(NOTIFY)),
        )
    if result.check.explanation_required:
        reply.say(
            _n(
                "That is beyond the usual limit of %(count)s day, so your reason is announced "
                "to everyone eligible.",
                "That is beyond the usual limit of %(count)s days, so your reason is announced "
                "to everyone eligible.",
                result.check.limit_days or 0,
            )
        )
    return reply.say(_("Next, tell everyone who may take part. Send:"), Code(request.usage(NOTIFY)))


# !notify, !start, !cancel


async def notify_command(request: Request) -> Reply:
    ref = await meeting_meant(request, request.args.get("ID"))
    told = await preparation.notify(request.ctx, request.person.matrix_id, ref)
    if not told:
        return Reply().say(
            _(
                "Everyone eligible already has the notice of %(ref)s as it stands, so nobody "
                "was told again.",
                ref=ref,
            )
        )
    return Reply().say(
        _n(
            "%(count)s person is being told about %(ref)s by direct message, in their language.",
            "%(count)s people are being told about %(ref)s by direct message, each in "
            "their language.",
            told,
            ref=ref,
        )
    )


async def start_command(request: Request) -> Reply:
    ref = await meeting_meant(request, request.args.get("ID"))
    await roll_call.open_meeting(request.ctx, request.person.matrix_id, ref)
    return (
        Reply()
        .say(_("%(ref)s is open: the roll call and the discussion have begun.", ref=ref))
        .say(_("Everyone taking part answers the roll call with:"), Code(request.usage(HERE)))
    )


async def cancel_command(request: Request) -> Reply:
    ref, reason = split_id(request.args["REASON"])
    if not reason:
        raise missing(request, "REASON")
    ref = await meeting_meant(request, ref)
    await meetings.cancel_meeting(request.ctx, request.person.matrix_id, ref, reason)
    # A cancelled Thing's own room becomes read-only.
    return Reply(rooms_changed=True).say(_("%(ref)s is cancelled.", ref=ref))


# !here


def _unquoted(text: str) -> str:
    """A name typed in quotes ("Bo Smith"), without them; anything else as typed."""
    tokens = tokenize(text)
    if len(tokens) == 1 and tokens[0].quoted and tokens[0].closed:
        return tokens[0].value
    return text


async def here_command(request: Request) -> Reply:
    ref, who = split_id(request.args.get(PERSON, ""))
    ref = await meeting_meant(request, ref, under_way=True)
    me = request.person
    attendee = None
    if who:
        await roll_call.check_may_record_others(request.ctx, me.matrix_id, ref)
        attendee = await people.find_person(request.ctx, _unquoted(who))
    status = await roll_call.record_attendance(
        request.ctx, me.matrix_id, ref, attendee.matrix_id if attendee else None
    )
    if attendee is None or attendee.matrix_id == me.matrix_id:
        reply = Reply().say(_("You are on the roll call of %(ref)s.", ref=ref))
    else:
        reply = Reply().say(
            _(
                "%(name)s (%(matrix_id)s) is on the roll call of %(ref)s.",
                name=member_text(attendee.display_name),
                matrix_id=attendee.matrix_id,
                ref=ref,
            )
        )
    return say_meeting_quorum(reply, status)


MOOT_CALL = Command(
    name="moot call",
    usage=_("%(prefix)smoot call QUESTION [--topic TOPIC]"),
    summary=_(
        "Calls an Assembly Moot of this room's assembly to decide QUESTION, and gives its "
        "ID; TOPIC names what it decides about, for primary remit."
    ),
    who=MOOT_CALLER,
    handler=moot_call_command,
    params=(Param("QUESTION", rest=True),),
    options=("topic",),
    acts=True,
)
THING_CALL = Command(
    name="thing call",
    usage=_("%(prefix)sthing call QUESTION --assemblies A,B"),
    summary=_(
        "Calls a Thing of Assemblies, in which the assemblies A, B and more decide "
        "QUESTION together, in a room of its own."
    ),
    who=THING_CALLER,
    handler=thing_call_command,
    params=(Param("QUESTION", rest=True),),
    options=("assemblies",),
    acts=True,
)
THING_AGREE = Command(
    name="thing agree",
    usage=_("%(prefix)sthing agree [ID]"),
    summary=_(
        "Agrees to the Thing of Assemblies ID for the assemblies you are secretary of; it "
        "is planned once every assembly involved agrees."
    ),
    who=THING_AGREER,
    handler=thing_agree_command,
    params=(Param("ID", optional=True),),
    acts=True,
)
PREPARE = Command(
    name="prepare",
    usage=_("%(prefix)sprepare [ID] facts|materials TEXT"),
    summary=_(
        "Records a preparation step of meeting ID: the facts collected, or the materials "
        "prepared (a short text or a link)."
    ),
    who=SECRETARY,
    handler=prepare_command,
    params=(Param("TEXT", optional=True, rest=True),),
    acts=True,
)
SCHEDULE = Command(
    name="schedule",
    usage=_(
        "%(prefix)sschedule [ID] YYYY-MM-DD HH:MM [--place TEXT] [--online URL] "
        "[--access TEXT] [--route TEXT] [--reason TEXT]"
    ),
    summary=_(
        "Sets the date and time of meeting ID in the party's timezone, where it is held, "
        "how disabled members take part and how to get there. A date later than the "
        "usual limit needs a reason, which is announced."
    ),
    who=SECRETARY,
    handler=schedule_command,
    params=(
        Param("ID", optional=True),
        Param("YYYY-MM-DD", optional=True),
        Param("HH:MM", optional=True),
    ),
    options=("place", "online", "access", "route", "reason"),
    acts=True,
)
NOTIFY = Command(
    name="notify",
    usage=_("%(prefix)snotify [ID]"),
    summary=_(
        "Tells everyone eligible about meeting ID by direct message, in their language, "
        "and again whenever the date, place or access changes."
    ),
    who=SECRETARY,
    handler=notify_command,
    params=(Param("ID", optional=True),),
    acts=True,
)
START = Command(
    name="start",
    usage=_("%(prefix)sstart [ID]"),
    summary=_("Opens meeting ID on its day: the roll call and the discussion begin."),
    who=SECRETARY,
    handler=start_command,
    params=(Param("ID", optional=True),),
    acts=True,
)
HERE = Command(
    name="here",
    usage=_('%(prefix)shere [@user:server|"Display Name"]'),
    summary=_(
        "Answers the roll call of the meeting under way in this room; a secretary or "
        "moderator names someone to record them as present. Shows the quorum."
    ),
    who=ATTENDEE,
    handler=here_command,
    params=(Param(PERSON, optional=True, rest=True),),
    acts=True,
)
CANCEL = Command(
    name="cancel",
    usage=_("%(prefix)scancel [ID] REASON"),
    summary=_("Cancels meeting ID, for the reason given, which is kept in the record."),
    who=SECRETARY,
    handler=cancel_command,
    params=(Param("REASON", rest=True),),
    acts=True,
)

COMMANDS: tuple[Command, ...] = (
    MOOT_CALL,
    THING_CALL,
    THING_AGREE,
    PREPARE,
    SCHEDULE,
    NOTIFY,
    START,
    HERE,
    CANCEL,
)
