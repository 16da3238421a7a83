"""The commands that run no meeting: help, language, whoami, assembly, quorum, consensus.

Each handler parses nothing itself (the dispatcher did), calls one use case in
``services/`` and says what it found.
"""

from __future__ import annotations

from harmony_matrix.bot.commands.base import Command, Param, Request
from harmony_matrix.bot.commands.member_text import member_text
from harmony_matrix.bot.commands.parsing import CommandSet
from harmony_matrix.bot.commands.quorum_text import say_meeting_quorum
from harmony_matrix.bot.commands.wording import day, language_name
from harmony_matrix.bot.replies import Code, Reply, Strong
from harmony_matrix.i18n import _, _n, list_of, verbatim
from harmony_matrix.services import assembly_rooms, people
from harmony_matrix.services.roll_call import QuorumStatus

ANYONE = _("anyone")
ANYONE_ON_REGISTER = _("anyone on the party's register")
SECRETARY = _("a secretary of the assembly, or the General Secretary")


async def help_command(request: Request) -> Reply:
    commands = CommandSet(request.commands)
    wanted = request.args.get("COMMAND", "").strip().removeprefix(request.prefix).split()
    reply = Reply()
    if not wanted:
        reply.say(
            _("The commands, and what they need:"),
        )
        reply.items(Code(request.usage(command)) for command in commands.commands)
        return reply.say(
            _("For what one command does, send:"),
            Code(_("%(prefix)shelp COMMAND", prefix=request.prefix)),
        )
    found = commands.find(wanted)
    if found is None:
        chosen = commands.family(wanted[0].lower())
        if not chosen:
            raise commands.unknown(request.prefix, wanted)
    else:
        command, taken = found
        chosen = commands.family(command.words[0]) if taken == 1 else [command]
    for command in chosen:
        reply.say(Code(request.usage(command)))
        reply.say(command.summary)
        reply.say(_("Who may use it: %(who)s.", who=command.who))
    return reply


async def language_command(request: Request) -> Reply:
    language = await people.set_language(
        request.ctx, request.person.matrix_id, request.args["CODE"]
    )
    # The answer already speaks the new language.
    return Reply(language=language).say(
        _(
            "From now on I write to you in %(language)s (%(code)s).",
            language=language_name(language),
            code=language,
        )
    )


async def whoami_command(request: Request) -> Reply:
    me = await people.whoami(
        request.ctx, request.person.matrix_id, person_id=request.person.person_id
    )
    reply = Reply()
    if me.is_member:
        reply.say(
            _(
                "You are %(name)s (%(matrix_id)s), a Member of the party.",
                name=member_text(me.display_name),
                matrix_id=me.matrix_id,
            )
        )
    else:
        reply.say(
            _(
                "You are %(name)s (%(matrix_id)s), a Participant in the party.",
                name=member_text(me.display_name),
                matrix_id=me.matrix_id,
            )
        )
    if me.suspended and me.suspended_until is not None:
        reply.say(
            _(
                "You are suspended until %(date)s: until then you cannot speak, debate, "
                "vote or sign.",
                date=day(me.suspended_until, request.ctx.party.timezone),
            )
        )
    elif me.suspended:
        reply.say(
            _("You are suspended until further notice: you cannot speak, debate, vote or sign.")
        )
    if me.offices:
        reply.say(
            _n(
                "Your office: %(offices)s.",
                "Your offices: %(offices)s.",
                len(me.offices),
                offices=list_of(people.office_name(title) for title in me.offices),
            )
        )
    if me.assemblies:
        reply.say(_("Your assemblies, and your roles in them:"))
        reply.items(
            _(
                "%(assembly)s: %(roles)s",
                assembly=item.name,
                roles=list_of(people.role_name(role) for role in item.roles),
            )
            for item in me.assemblies
        )
    else:
        reply.say(_("You are not in any assembly yet."))
    return reply.say(
        _(
            "I write to you in %(language)s (%(code)s). To change it, send:",
            language=language_name(me.language),
            code=me.language,
        ),
        Code(request.usage(LANGUAGE)),
    )


def _quorum_lines(reply: Reply, info: assembly_rooms.AssemblyInfo) -> None:
    quorum = info.quorum
    reply.say(_("Active members: %(count)s", count=quorum.active_population))
    reply.say(_("Quorum for an Assembly Moot: %(needed)s", needed=quorum.needed))
    reply.say(quorum.basis)
    if not quorum.reachable:
        reply.say(
            _(
                "This assembly has fewer active members than its quorum, so it cannot hold a "
                "Moot on its own until more members take part."
            )
        )


def _not_an_assembly_room(request: Request) -> Reply:
    return (
        Reply()
        .say(_("This room is not an assembly's room."))
        .say(
            _("A secretary can make it their assembly's room with:"),
            Code(request.usage(ASSEMBLY_LINK)),
        )
    )


async def assembly_command(request: Request) -> Reply:
    info = await assembly_rooms.assembly_of_room(request.ctx, request.event.room_id)
    if info is None:
        return _not_an_assembly_room(request)
    reply = Reply().say(
        Strong(_("%(name)s (%(reference)s)", name=info.name, reference=info.reference))
    )
    if info.subtitle:
        reply.say(verbatim(info.subtitle))
    if info.purpose:
        reply.say(_("Purpose: %(purpose)s", purpose=info.purpose))
    _quorum_lines(reply, info)
    return reply


async def assembly_link_command(request: Request) -> Reply:
    link = await assembly_rooms.link_room(
        request.ctx, request.person.matrix_id, request.args["SLUG"], request.event.room_id
    )
    if not link.changed:
        return Reply().say(
            _(
                "This room is already the room of %(name)s (%(reference)s).",
                name=link.name,
                reference=link.reference,
            )
        )
    reply = Reply().say(
        _(
            "This room is now the room of %(name)s (%(reference)s): its Moots are held here.",
            name=link.name,
            reference=link.reference,
        )
    )
    if link.previous_room_id is not None:
        reply.say(_("The room it had before is no longer the assembly's room."))
    reply.rooms_changed = True
    return reply


async def quorum_command(request: Request) -> Reply:
    found = await assembly_rooms.room_quorum(
        request.ctx, request.event.room_id, request.args.get("ID")
    )
    reply = Reply()
    if isinstance(found, QuorumStatus):
        return say_meeting_quorum(reply, found)
    reply.say(
        _(
            "No meeting is under way in this room. For a Moot of %(name)s (%(reference)s):",
            name=found.name,
            reference=found.reference,
        )
    )
    _quorum_lines(reply, found)
    return reply


async def consensus_command(request: Request) -> Reply:
    digest = await assembly_rooms.consensus_digest(
        request.ctx, request.event.room_id, request.args.get("SLUG")
    )
    reply = Reply()
    if digest.assembly is not None and not digest.matching:
        reply.say(
            _(
                "No consensus of %(assembly)s has been recorded yet.",
                assembly=digest.assembly,
            )
        )
    elif not digest.count:
        return reply.say(_("No consensus has been recorded yet."))
    else:
        if digest.assembly is not None:
            reply.say(
                _n(
                    "%(assembly)s has %(count)s entry in the record of consensus. The latest:",
                    "%(assembly)s has %(count)s entries in the record of consensus. The latest:",
                    digest.matching,
                    assembly=digest.assembly,
                )
            )
        else:
            reply.say(
                _n(
                    "The record of consensus has %(count)s entry. The latest:",
                    "The record of consensus has %(count)s entries. The latest:",
                    digest.count,
                )
            )
        reply.items(
            _(
                "Entry %(number)s (%(meeting)s): %(question)s Outcome: %(outcome)s. This is "
                "Party Consensus.",
                number=entry.number,
                meeting=entry.meeting_ref,
                question=member_text(entry.question),
                outcome=member_text(entry.outcome),
            )
            if entry.party_consensus
            else _(
                "Entry %(number)s (%(meeting)s): %(question)s Outcome: %(outcome)s",
                number=entry.number,
                meeting=entry.meeting_ref,
                question=member_text(entry.question),
                outcome=member_text(entry.outcome),
            )
            for entry in digest.latest
        )
    if digest.count:
        reply.say(
            _n(
                "The whole record has %(count)s entry; its head hash is:",
                "The whole record has %(count)s entries; its head hash is:",
                digest.count,
            ),
            Code(verbatim(digest.head)),
        )
    return reply


HELP = Command(
    name="help",
    usage=_("%(prefix)shelp [COMMAND]"),
    summary=_("Lists the commands, or shows what one command does and who may use it."),
    who=ANYONE,
    handler=help_command,
    params=(Param("COMMAND", optional=True, rest=True),),
    needs_person=False,
)
LANGUAGE = Command(
    name="language",
    usage=_("%(prefix)slanguage CODE"),
    summary=_("Sets the language I write to you in, for example fr for French."),
    who=ANYONE_ON_REGISTER,
    handler=language_command,
    params=(Param("CODE"),),
)
WHOAMI = Command(
    name="whoami",
    usage=_("%(prefix)swhoami"),
    summary=_("Shows your status in the party, your assemblies and roles, and your language."),
    who=ANYONE_ON_REGISTER,
    handler=whoami_command,
)
ASSEMBLY = Command(
    name="assembly",
    usage=_("%(prefix)sassembly"),
    summary=_(
        "Shows the assembly whose room this is: its reference, purpose, active members "
        "and the quorum its Moots need."
    ),
    who=ANYONE,
    handler=assembly_command,
    needs_person=False,
)
ASSEMBLY_LINK = Command(
    name="assembly link",
    usage=_("%(prefix)sassembly link SLUG"),
    summary=_("Makes this room the room of the assembly SLUG, where its Moots are held."),
    who=SECRETARY,
    handler=assembly_link_command,
    params=(Param("SLUG"),),
    acts=True,
)
QUORUM = Command(
    name="quorum",
    usage=_("%(prefix)squorum [ID]"),
    summary=_(
        "Shows the quorum of meeting ID, or of the meeting under way in this room: how "
        "many are needed and present, and whether it is reached; in an assembly's room "
        "with no meeting under way, the quorum its Moots need."
    ),
    who=ANYONE,
    handler=quorum_command,
    params=(Param("ID", optional=True),),
    needs_person=False,
)
CONSENSUS = Command(
    name="consensus",
    usage=_("%(prefix)sconsensus [SLUG]"),
    summary=_(
        "Shows the latest entries of the record of consensus, for the assembly SLUG or "
        "this room's assembly, else for the whole party, and the record's head hash."
    ),
    who=ANYONE,
    handler=consensus_command,
    params=(Param("SLUG", optional=True),),
    needs_person=False,
)

COMMANDS = (HELP, LANGUAGE, WHOAMI, ASSEMBLY, ASSEMBLY_LINK, QUORUM, CONSENSUS)
