"""The commands that run no meeting, each through the dispatcher on a real database:
what they answer, and how they refuse every misuse the issue lists."""

from __future__ import annotations

from sqlalchemy import select

from harmony_matrix.bot.commands import BotCommandSettings, Dispatcher, default_commands
from harmony_matrix.i18n import available_languages
from harmony_matrix.i18n import isolated as iso
from harmony_matrix.services import consensus, debate, people, roll_call
from harmony_matrix.storage.models import Assembly, AuditEvent
from tests.conftest import read_english
from tests.services.helpers import (
    ANA,
    CHLOE,
    DAS,
    ELIF,
    GWEN,
    HAMZA,
    IRIS,
    JON,
    MEDIA,
    OWG,
    prepared_moot,
    row_counts,
)

from .conftest import MEDIA_ROOM, OTHER_ROOM, Chat, plain

QUESTION = "Should we publish a monthly newsletter?"

STRANGER = "@stranger:elsewhere.org"


async def room_of(ctx, slug: str) -> str | None:
    async with ctx.transaction() as session:
        return await session.scalar(select(Assembly.matrix_room_id).where(Assembly.slug == slug))


# !help


async def test_help_lists_every_command_with_its_usage_line_even_for_a_stranger(chat):
    text = await chat.text(STRANGER, "!help")
    for line in (
        "!help [COMMAND]",
        "!language CODE",
        "!whoami",
        "!assembly",
        "!assembly link SLUG",
        "!quorum [ID]",
        "!consensus [SLUG]",
    ):
        assert f"- {line}\n" in text
    assert "!help COMMAND" in text


async def test_help_about_one_command_gives_its_summary_and_who_may_use_it(chat):
    text = await chat.text(ANA, "!help assembly link")
    assert text.splitlines() == [
        "!assembly link SLUG",
        "Makes this room the room of the assembly SLUG, where its Moots are held.",
        "Who may use it: a secretary of the assembly, or the General Secretary.",
    ]
    # The prefix may be typed too, and a family shows all its members.
    family = await chat.text(ANA, "!help !assembly")
    assert "!assembly\n" in family and "!assembly link SLUG" in family


async def test_help_about_an_unknown_command_suggests_the_closest(chat):
    text = await chat.text(ANA, "!help quorom")
    assert text.splitlines() == [
        "There is no command !quorom. Did you mean !quorum?",
        "Usage: !quorum [ID]",
    ]


async def test_the_prefix_is_configurable_and_usage_lines_follow_it(demo):
    chat = Chat(demo, Dispatcher(default_commands(), BotCommandSettings(prefix="?")))
    assert await chat.send(ANA, "!help") is None
    text = await chat.text(ANA, "?help")
    assert "- ?assembly link SLUG" in text and "!" not in text


# !language


async def test_language_sets_the_persons_language_and_answers_in_it(chat):
    reply = await chat.ask(GWEN, "!language FR")
    assert reply.language == "fr"
    assert "français (fr)" in plain(reply)
    assert (await people.whoami(chat.ctx, GWEN)).language == "fr"
    async with chat.ctx.transaction() as session:
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "person.language")
        )
    assert event is not None and event.details == {"previous": "cy", "language": "fr"}
    # Every later answer is in French: a translated message shows it.
    later = await chat.ask(GWEN, "!consensus nowhere")
    assert later.language == "fr"
    assert "Il n'y a pas d'assemblée nommée « nowhere »." in plain(later)


async def test_language_refuses_a_language_without_a_catalog_and_lists_the_available(chat):
    await read_english(chat.ctx)
    text = await chat.text(GWEN, "!language xx")
    assert text.splitlines() == [
        f"Harmony does not speak “xx” yet. Choose one of: {', '.join(available_languages())}.",
        "Usage: !language CODE",
    ]
    assert (await people.whoami(chat.ctx, GWEN)).language == "en"


async def test_language_misuse(chat):
    await read_english(chat.ctx)
    assert await chat.text(GWEN, "!language") == "CODE is missing.\nUsage: !language CODE"
    assert await chat.text(GWEN, "!language fr en") == (
        "“en” was not expected here.\nUsage: !language CODE"
    )
    stranger = await chat.text(STRANGER, "!language fr")
    assert "not on the party's register" in stranger and "ask your secretary to add you" in stranger


async def test_a_suspended_member_may_still_choose_a_language(chat):
    reply = await chat.ask(IRIS, "!language fr")
    assert reply.language == "fr"


# !whoami


async def test_whoami_shows_status_offices_assemblies_roles_and_language(chat):
    text = await chat.text(ANA, "!whoami")
    assert text.splitlines() == [
        f"You are {iso('Ana Lima')} (@ana:harmony.uk), a Member of the party.",
        "Your office: General Secretary.",
        "Your assemblies, and your roles in them:",
        "- Media Working Group: secretary",
        "- Operational Working Group: secretary",
        "I write to you in English (en). To change it, send: !language CODE",
    ]


async def test_whoami_of_a_participant_in_assemblies_by_the_automatic_rule(chat):
    text = await chat.text(HAMZA, "!whoami")
    assert "a Participant in the party" in text
    # The Operational Working Group counts every participant as a member.
    assert "- Disability Activism Society: member" in text
    assert "- Operational Working Group: member" in text


async def test_whoami_says_until_when_someone_is_suspended(chat):
    iris = await chat.text(IRIS, "!whoami")
    assert "You are suspended until 31 January 2027: until then you cannot speak" in iris
    jon = await chat.text(JON, "!whoami")
    assert "You are suspended until further notice" in jon


async def test_whoami_misuse(chat):
    text = await chat.text(STRANGER, "!whoami")
    assert text == (
        "You are not on the party's register yet, so I cannot do this for you. "
        "Please ask your secretary to add you."
    )
    assert await chat.text(ANA, "!whoami ana") == "“ana” was not expected here.\nUsage: !whoami"


# !assembly


async def test_assembly_shows_the_rooms_assembly_and_its_quorum(media_room):
    text = await media_room.text(STRANGER, "!assembly")
    lines = text.splitlines()
    assert lines[0].startswith("Media Working Group (HPUK-ASSE-")
    assert "Purpose: Publishes the party's news and keeps members informed." in lines
    assert "Active members: 4" in lines
    assert "Quorum for an Assembly Moot: 4" in lines
    assert "Quorum is 4 because the assembly has 4 active members (30 or fewer)." in lines


async def test_assembly_says_when_a_tiny_assembly_cannot_reach_quorum(chat):
    await chat.ask(CHLOE, f"!assembly link {DAS}", room=OTHER_ROOM)
    text = await chat.text(ANA, "!assembly", room=OTHER_ROOM)
    assert "cannot hold a Moot on its own" in text
    # Chloé reads French: the same answer, from the French catalog.
    french = await chat.text(CHLOE, "!assembly", room=OTHER_ROOM)
    assert "Elle ne peut donc pas tenir un Moot seule" in french


async def test_assembly_in_a_room_of_no_assembly_says_how_to_link_it(chat):
    text = await chat.text(ANA, "!assembly", room=OTHER_ROOM)
    assert text.splitlines() == [
        "This room is not an assembly's room.",
        "A secretary can make it their assembly's room with: !assembly link SLUG",
    ]


async def test_assembly_with_an_unknown_subcommand_suggests_the_closest(chat):
    text = await chat.text(ANA, "!assembly lnik media-working-group")
    assert text.splitlines() == [
        "There is no command !assembly lnik. Did you mean !assembly link?",
        "Usage: !assembly link SLUG",
    ]
    other = await chat.text(ANA, "!assembly zzz")
    assert other.splitlines() == [
        "There is no command !assembly zzz.",
        "Usage:",
        "- !assembly",
        "- !assembly link SLUG",
    ]


# !assembly link


async def test_a_secretary_links_the_room_to_their_assembly(chat):
    text = await chat.text(CHLOE, f"!assembly link {DAS}", room=OTHER_ROOM)
    # Chloé reads French.
    assert text.startswith("Ce salon est désormais celui de Disability Activism Society (HPUK-")
    assert await room_of(chat.ctx, DAS) == OTHER_ROOM
    async with chat.ctx.transaction() as session:
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "assembly.link_room")
        )
    assert event is not None and event.subject == DAS
    assert event.details == {"room": OTHER_ROOM, "previous": None}
    again = await chat.text(CHLOE, f"!assembly link {DAS}", room=OTHER_ROOM)
    assert again.startswith("Ce salon est déjà celui de Disability Activism Society")


async def test_the_general_secretary_may_link_any_assembly_by_name_and_move_its_room(media_room):
    text = await media_room.text(ANA, '!assembly link "Media Working Group"', room=OTHER_ROOM)
    assert "The room it had before is no longer the assembly's room." in text
    assert await room_of(media_room.ctx, MEDIA) == OTHER_ROOM


async def test_a_room_belongs_to_one_assembly_only(media_room):
    before = await row_counts(media_room.ctx)
    text = await media_room.text(ANA, f"!assembly link {OWG}")
    assert text == (
        "This room is already the room of Media Working Group; a room belongs to one assembly only."
    )
    assert await room_of(media_room.ctx, OWG) is None
    assert await row_counts(media_room.ctx) == before


async def test_assembly_link_refusals(chat):
    await read_english(chat.ctx)
    before = await row_counts(chat.ctx)
    not_secretary = await chat.text(GWEN, f"!assembly link {MEDIA}")
    assert not_secretary == (
        "Only a secretary of Media Working Group, or the General Secretary, can do this."
    )
    suspended = await chat.text(IRIS, f"!assembly link {MEDIA}")
    assert suspended.startswith("Sorry, you are suspended until 31 January 2027, so you cannot")
    # The commands that change nothing, whichever families the bot has.
    still = suspended.split("You can still use ", 1)[1]
    for command in ("!help", "!language", "!whoami", "!assembly,", "!quorum", "!consensus"):
        assert command in still
    assert "!assembly link" not in still
    stranger = await chat.text(STRANGER, f"!assembly link {MEDIA}")
    assert "ask your secretary to add you" in stranger
    unknown = await chat.text(ANA, "!assembly link nowhere")
    assert unknown == ("There is no assembly called “nowhere”.\nUsage: !assembly link SLUG")
    missing = await chat.text(ANA, "!assembly link")
    assert missing.startswith("SLUG is missing.\nUsage:")
    extra = await chat.text(ANA, f"!assembly link {MEDIA} {OWG}")
    assert extra.startswith(f"“{OWG}” was not expected here.\nUsage:")
    unclosed = await chat.text(ANA, '!assembly link "Media Working')
    assert unclosed.startswith("A quote is not closed: “Media Working”.")
    assert await row_counts(chat.ctx) == before


# !quorum


async def test_quorum_in_an_assembly_room_without_a_meeting_is_the_assemblys(media_room):
    text = await media_room.text(STRANGER, "!quorum")
    assert text.splitlines()[:2] == [
        "No meeting is under way in this room. For a Moot of Media Working Group "
        f"({text.split('(')[1].split(')')[0]}):",
        "Active members: 4",
    ]
    assert "Quorum for an Assembly Moot: 4" in text


async def test_quorum_of_the_meeting_under_way_in_the_room_or_by_its_id(media_room):
    ctx = media_room.ctx
    ref = await prepared_moot(ctx)
    await roll_call.open_meeting(ctx, ANA, ref)
    for who in (ANA, CHLOE, GWEN):
        await roll_call.record_attendance(ctx, who, ref)
    text = await media_room.text(ANA, "!quorum")
    assert text.splitlines() == [
        f"{ref}: 3 people present.",
        "Quorum is not reached yet.",
        "- Media Working Group: 3 present, 4 needed; not reached yet.",
    ]
    await roll_call.record_attendance(ctx, ELIF, ref)
    # With its ID, from any room, in any case.
    elsewhere = await media_room.text(STRANGER, f"!quorum {ref.lower()}", room=OTHER_ROOM)
    assert elsewhere.splitlines() == [
        f"{ref}: 4 people present.",
        "Quorum is reached.",
        "- Media Working Group: 4 present, 4 needed; reached.",
    ]


async def test_quorum_asks_which_meeting_when_several_are_under_way(media_room):
    ctx = media_room.ctx
    first = await prepared_moot(ctx)
    second = await prepared_moot(ctx)
    for ref in (first, second):
        await roll_call.open_meeting(ctx, ANA, ref)
    text = await media_room.text(ANA, "!quorum")
    assert text.splitlines() == [
        f"Several meetings are under way in this room ({first} and {second}): give the ID "
        "of the one you mean.",
        "Usage: !quorum [ID]",
    ]


async def test_quorum_misuse(media_room):
    wrong_id = await media_room.text(ANA, "!quorum M-999")
    assert wrong_id == "There is no meeting M-999.\nUsage: !quorum [ID]"
    not_an_id = await media_room.text(ANA, "!quorum soon")
    assert not_an_id == "“soon” is not an ID. IDs look like M-12.\nUsage: !quorum [ID]"
    wrong_room = await media_room.text(ANA, "!quorum", room=OTHER_ROOM)
    assert wrong_room.splitlines()[0] == (
        "This room is not an assembly's room and no meeting is under way in it: give a meeting ID."
    )
    extra = await media_room.text(ANA, "!quorum M-1 M-2")
    assert extra == "“M-2” was not expected here.\nUsage: !quorum [ID]"


# !consensus


async def _decide(ctx, outcome: str) -> str:
    ref = await prepared_moot(ctx)
    await roll_call.open_meeting(ctx, ANA, ref)
    for who in (ANA, CHLOE, GWEN, ELIF):
        await roll_call.record_attendance(ctx, who, ref)
    await debate.start_debate(ctx, ANA, ref)
    await debate.add_option(ctx, ANA, ref, outcome)
    await debate.end_debate(ctx, ANA, ref)
    return ref


async def test_consensus_of_an_empty_record(chat):
    assert await chat.text(STRANGER, "!consensus", room=OTHER_ROOM) == (
        "No consensus has been recorded yet."
    )


async def test_consensus_shows_the_latest_entries_newest_first_with_the_head_hash(media_room):
    ctx = media_room.ctx
    first = await _decide(ctx, "Publish monthly")
    second = await _decide(ctx, "Publish in large print")
    head = (await consensus.check_chain(ctx)).head
    text = await media_room.text(STRANGER, "!consensus", room=OTHER_ROOM)
    assert text.splitlines() == [
        "The record of consensus has 2 entries. The latest:",
        f"- Entry 2 ({second}): {iso(QUESTION)} Outcome: {iso('Publish in large print')}",
        f"- Entry 1 ({first}): {iso(QUESTION)} Outcome: {iso('Publish monthly')}",
        f"The whole record has 2 entries; its head hash is: {head}",
    ]
    # In the assembly's room, or naming it: that assembly's entries.
    here = await media_room.text(STRANGER, "!consensus")
    assert here.startswith("Media Working Group has 2 entries in the record of consensus.")
    named = await media_room.text(STRANGER, f"!consensus {MEDIA}", room=OTHER_ROOM)
    assert named == here
    none = await media_room.text(STRANGER, f"!consensus {OWG}")
    assert none.splitlines() == [
        "No consensus of Operational Working Group has been recorded yet.",
        f"The whole record has 2 entries; its head hash is: {head}",
    ]


async def test_consensus_misuse(chat):
    unknown = await chat.text(ANA, "!consensus nowhere")
    assert unknown == "There is no assembly called “nowhere”.\nUsage: !consensus [SLUG]"
    extra = await chat.text(ANA, f"!consensus {MEDIA} {OWG}")
    assert extra.startswith(f"“{OWG}” was not expected here.")


async def test_room_ids_are_stored_as_given(media_room):
    assert await room_of(media_room.ctx, MEDIA) == MEDIA_ROOM
