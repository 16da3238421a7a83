"""The commands that run a meeting, through the dispatcher on a real database: a whole
Moot from its call to consensus, to a ballot, and every misuse answered with what was
wrong (and the usage line where the input was at fault)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from harmony_matrix.bot.commands.member_text import isolated
from harmony_matrix.bot.commands.moments import LONGEST_BALLOT, local_moment, parse_duration
from harmony_matrix.bot.replies import render_plain
from harmony_matrix.errors import InvalidInput
from harmony_matrix.services import ballots, consensus, debate, meetings, roll_call
from harmony_matrix.services.preparation import when
from harmony_matrix.storage.models import AuditEvent, Person
from tests.ballots.helpers import links_by_person, path_of
from tests.conftest import read_english
from tests.services.helpers import (
    ANA,
    BRYN,
    CHLOE,
    ELIF,
    GWEN,
    HAMZA,
    IRIS,
    MEDIA,
    OWG,
    prepared_moot,
    row_counts,
    to_start,
)

from .conftest import OTHER_ROOM, Chat, html, matrix_content, plain

COMMITTEE = "secretarial-committee"  # Bryn is its secretary
KAI = "@kai.hughes:harmony.uk"  # a Member in no listed assembly
STRANGER = "@stranger:elsewhere.org"
QUESTION = "Should we publish a monthly newsletter?"
MEDIA_MEMBERS = (ANA, CHLOE, GWEN, ELIF)  # Iris is suspended; quorum is 4


def shown(text: str) -> str:
    """A member's text as replies show it: in a bidirectional isolate of its own."""
    return isolated(text)


def london(moment: datetime) -> str:
    """A time as replies write it to an English reader."""
    return when(moment, "Europe/London").render("en")


def ref_in(text: str) -> str:
    found = re.search(r"M-[0-9]+", text)
    assert found, text
    return found.group()


async def opened_moot(chat: Chat, present=MEDIA_MEMBERS) -> str:
    """A prepared Moot of the Media Working Group, opened, with ``present`` present."""
    ref = await prepared_moot(chat.ctx)
    await roll_call.open_meeting(chat.ctx, ANA, ref)
    for who in present:
        await roll_call.record_attendance(chat.ctx, who, ref)
    return ref


async def debating_moot(chat: Chat, options=()) -> str:
    ref = await opened_moot(chat)
    await debate.start_debate(chat.ctx, ANA, ref)
    for text in options:
        await debate.add_option(chat.ctx, ANA, ref, text)
    return ref


# A whole Moot


async def test_a_whole_moot_from_the_call_to_consensus_in_the_room(media_room, clock):
    chat = media_room
    called = await chat.text(ANA, f"!moot call {QUESTION}")
    ref = ref_in(called)
    assert called.splitlines() == [
        f"Assembly Moot {ref} of Media Working Group will meet. It will decide: {shown(QUESTION)}",
        "A secretary of the group gets it ready here. These are the commands to use:",
        "- !prepare [ID] facts|materials TEXT",
        "- !schedule [ID] YYYY-MM-DD HH:MM [--place TEXT] [--online URL] [--access TEXT] "
        "[--route TEXT] [--reason TEXT]",
        "- !notify [ID]",
        "- !start [ID]",
    ]
    assert await chat.text(ANA, "!prepare facts Survey results: 40 answers") == (
        f"The facts for {ref} are recorded."
    )
    assert await chat.text(ANA, f"!prepare {ref.lower()} MATERIALS Slides, large print") == (
        f"The materials for {ref} are recorded."
    )
    # Ten days ahead, at seven in the evening in London (GMT in November).
    scheduled = await chat.text(
        ANA,
        '!schedule 2026-11-12 19:00 --place "Community Hall, 1 High St" '
        '--online https://meet.example/media --access "Step-free entrance, captions" '
        '--route "Bus 12 to the High St"',
    )
    assert scheduled.splitlines() == [
        f"{ref} is set for Thursday, 12 November 2026, 19:00 (Greenwich Mean Time).",
        "Next, tell everyone who may take part. Send: !notify [ID]",
    ]
    starts_at = (await meetings.meeting_summary(chat.ctx, ref)).starts_at
    assert starts_at == datetime(2026, 11, 12, 19, 0, tzinfo=UTC)
    told = await chat.text(ANA, "!notify")
    count = int(told.split()[0])
    assert told == (
        f"{count} people are being told about {ref} by direct message, each in their language."
    )
    assert count >= len(MEDIA_MEMBERS)
    assert await chat.text(ANA, f"!notify {ref}") == (
        f"Everyone eligible already has the notice of {ref} as it stands, so nobody was told again."
    )
    await to_start(chat.ctx, ref)
    assert await chat.text(ANA, "!start") == (
        f"{ref} is open: the roll call and the discussion have begun.\n"
        "Everyone taking part answers the roll call with: "
        '!here [@user:server|"Display Name"]'
    )
    assert (await chat.text(ANA, "!here")).splitlines() == [
        f"You are on the roll call of {ref}.",
        f"{ref}: 1 person present.",
        "Quorum is not reached yet.",
        "- Media Working Group: 1 present, 4 needed; not reached yet.",
    ]
    await chat.ask(GWEN, "!here")
    # A secretary records people attending offline: by Matrix ID, or by name in any case.
    by_id = await chat.text(ANA, f"!here {CHLOE}")
    assert by_id.splitlines()[0] == (
        f"{shown('Chloé Martin')} ({CHLOE}) is on the roll call of {ref}."
    )
    by_name = await chat.text(ANA, '!here "elif KAYA"')
    assert by_name.splitlines() == [
        f"{shown('Elif Kaya')} ({ELIF}) is on the roll call of {ref}.",
        f"{ref}: 4 people present.",
        "Quorum is reached.",
        "- Media Working Group: 4 present, 4 needed; reached.",
    ]
    # Answering twice changes nothing.
    assert "4 people present" in await chat.text(ELIF, "!here")
    assert await chat.text(ELIF, "!suggest Publish it monthly, in large print too") == (
        f"Suggestion 1 for {ref} is written down: {shown('Publish it monthly, in large print too')}"
    )
    assert (await chat.text(ANA, "!debate")).startswith(f"{ref} is in its debate phase now.")
    assert await chat.text(ANA, "!options") == f"{ref} has no options yet."
    assert await chat.text(ANA, "!option add Publish monthly, in large print too") == (
        f"Option 1 of {ref}: {shown('Publish monthly, in large print too')}"
    )
    assert await chat.text(STRANGER, f"!options {ref}", room=OTHER_ROOM) == (
        f"{ref} has 1 option:\n- 1. {shown('Publish monthly, in large print too')}"
    )
    assert await chat.text(ANA, "!vote") == (
        f"The debate of {ref} ended with one option, so it is the consensus. It is now in "
        "the record of consensus."
    )
    [entry] = await consensus.list_consensus(chat.ctx)
    assert (entry.meeting_ref, entry.outcome) == (ref, "Publish monthly, in large print too")
    # The meeting is over: the room has none under way.
    assert await chat.text(ANA, "!suggest Too late") == (
        "No meeting is under way in this room: give the meeting's ID, like M-12.\n"
        "Usage: !suggest TEXT"
    )


async def test_a_debate_with_two_options_goes_to_a_secret_ballot(media_room, clock):
    await read_english(media_room.ctx)
    chat = media_room
    ref = await opened_moot(chat)
    await chat.ask(ANA, "!debate")
    for text in ("Monthly", "Every two months", "Yearly"):
        await chat.ask(ANA, f"!option add {text}")
    assert await chat.text(ANA, "!option merge 2 3 Every two months, or yearly") == (
        f"Options 2 and 3 of {ref} are merged into option 4: {shown('Every two months, or yearly')}"
    )
    assert await chat.text(ANA, "!option add Weekly") == f"Option 5 of {ref}: {shown('Weekly')}"
    assert await chat.text(ANA, "!option withdraw 5") == f"Option 5 of {ref} is withdrawn."
    assert await chat.text(ANA, "!options") == (
        f"{ref} has 2 options:\n- 1. {shown('Monthly')}\n"
        f"- 4. {shown('Every two months, or yearly')}"
    )
    assert await chat.text(ANA, "!vote") == (
        f"The debate of {ref} ended with 2 options, so it goes to a secret vote. Open the "
        "ballot with: !ballot open [ID] [--closes DURATION]"
    )
    opened = await chat.text(ANA, "!ballot open --closes 1d12h")
    closes_at = clock.current + timedelta(days=1, hours=12)
    closing = london(closes_at)
    assert opened.splitlines() == [
        f"The secret ballot of {ref} is open until {closing}.",
        "4 people are present. Each gets their own voting link in a direct message. Anyone "
        "who answers the roll call while the ballot is open gets one too.",
    ]
    view = await ballots.round_status(chat.ctx, ref)
    assert (view.closes_at, view.eligible) == (closes_at, 4)
    assert await chat.text(STRANGER, "!ballot status") == (
        f"The ballot of {ref} (round 1) is open until {closing}. 0 of 4 people have voted."
    )
    links = await links_by_person(chat.ctx)
    assert sorted(links) == sorted(MEDIA_MEMBERS)
    for who in (ANA, GWEN):
        await ballots.cast_ballot(chat.ctx, path_of(links[who]), {1: 5, 4: 1})
    status = await chat.text(GWEN, f"!ballot status {ref}")
    assert status.endswith("2 of 4 people have voted.")
    # Turnout only: nobody's name is in it.
    assert not {"ana", "gwen", "lima", "morgan"} & set(re.findall(r"\w+", status.lower()))
    early = await chat.text(ANA, "!ballot close")
    assert early == (
        f"The ballot closes at {closing}; 2 of 4 have not voted yet. It can close earlier "
        "only when everyone has voted."
    )
    for who in (CHLOE, ELIF):
        await ballots.cast_ballot(chat.ctx, path_of(links[who]), {1: 4, 4: 2})
    assert await chat.text(ANA, "!ballot close") == (
        f"The ballot of {ref} is closed and counted. 4 of 4 people have voted.\n"
        f"The winner, now the consensus: {shown('1. Monthly')}"
    )
    [entry] = await consensus.list_consensus(chat.ctx)
    assert entry.outcome == "Monthly"
    # Closed: by its ID from anywhere, the count and never who.
    assert await chat.text(STRANGER, f"!ballot status {ref}", room=OTHER_ROOM) == (
        f"The ballot of {ref} (round 1) is closed. 4 of 4 people have voted."
    )


async def test_a_ballot_with_no_clear_winner_goes_back_to_debate(media_room, clock):
    chat = media_room
    ref = await debating_moot(chat, ("Monthly", "Yearly"))
    await chat.ask(ANA, "!vote")
    await chat.ask(ANA, "!ballot open --closes 90m")
    links = await links_by_person(chat.ctx)
    for who, scores in zip(MEDIA_MEMBERS, ({1: 5, 2: 0}, {1: 0, 2: 5}) * 2, strict=True):
        await ballots.cast_ballot(chat.ctx, path_of(links[who]), scores)
    assert await chat.text(ANA, "!ballot close") == (
        f"The ballot of {ref} is closed and counted. 4 of 4 people have voted.\n"
        f"There is no clear winner, so {ref} goes back to its debate."
    )
    assert (await meetings.meeting_summary(chat.ctx, ref)).phase == "debate"


async def test_the_default_closing_time_is_the_partys(media_room, clock):
    chat = media_room
    await debating_moot(chat, ("Monthly", "Yearly"))
    await chat.ask(ANA, "!vote")
    opened = await chat.text(ANA, "!ballot open")
    assert f"open until {london(clock.current + timedelta(hours=72))}." in opened


# A Thing of Assemblies


async def test_a_thing_is_called_agreed_and_its_room_made(media_room):
    chat = media_room
    called = await chat.ask(
        BRYN, f"!thing call Shall we caption every video? --assemblies {COMMITTEE},{MEDIA}"
    )
    # The Thing gets its room as soon as the reply is sent.
    assert called.rooms_changed
    ref = ref_in(plain(called))
    # Bryn reads Welsh, which has no catalog yet: English words, Welsh lists ("a" for "and").
    assert called.language == "cy"
    assert render_plain(called, "en").splitlines() == [
        f"Thing of Assemblies {ref} of {COMMITTEE} and {MEDIA} will meet. It will decide: "
        f"{shown('Shall we caption every video?')}",
        "It gets a room of its own, and everyone who may take part is invited to it.",
        f"It waits for {MEDIA} to agree. A secretary of it agrees with: !thing agree {ref}",
    ]
    assert (await meetings.meeting_summary(chat.ctx, ref)).awaiting == (MEDIA,)
    agreed = await chat.ask(ANA, f"!thing agree {ref}", room=OTHER_ROOM)
    assert agreed.rooms_changed
    assert plain(agreed).splitlines() == [
        f"{ref} now has the agreement of {COMMITTEE} and {MEDIA}.",
        f"Every assembly involved has agreed to {ref}: it can be planned.",
    ]
    again = await chat.text(ANA, f"!thing agree {ref}", room=OTHER_ROOM)
    assert again == f"Every assembly involved has already agreed to {ref}."


async def test_a_thing_called_by_the_general_secretary_is_agreed_at_once(chat):
    reply = await chat.ask(ANA, f"!thing call Shared rota? --assemblies {MEDIA},{OWG}")
    ref = ref_in(plain(reply))
    assert plain(reply).splitlines() == [
        f"Thing of Assemblies {ref} of {MEDIA} and {OWG} will meet. It will decide: "
        f"{shown('Shared rota?')}",
        "It gets a room of its own, and everyone who may take part is invited to it.",
        f"Every assembly involved has agreed to {ref}: it can be planned.",
    ]
    assert reply.rooms_changed


# Where a meeting is, and which one a command means


async def test_a_moot_is_called_only_in_an_assemblys_room(chat):
    before = await row_counts(chat.ctx)
    text = await chat.text(ANA, f"!moot call {QUESTION}", room=OTHER_ROOM)
    assert text.splitlines() == [
        "A Moot is called in the room of its assembly, and this room is not an assembly's "
        "room. Send this command in your assembly's room.",
        "A secretary can make this room their assembly's room with: !assembly link SLUG",
    ]
    assert await row_counts(chat.ctx) == before


async def test_a_member_may_call_a_moot_of_their_assembly_with_a_topic(media_room):
    text = await media_room.text(ELIF, f"!moot call {QUESTION} --topic Newsletters")
    ref = ref_in(text)
    assert text.splitlines()[:2] == [
        f"Assembly Moot {ref} of Media Working Group will meet. It will decide: {shown(QUESTION)}",
        f"Its topic: {shown('Newsletters')}",
    ]
    assert (await meetings.meeting_summary(media_room.ctx, ref)).topic == "Newsletters"


async def test_with_several_meetings_under_way_the_member_is_asked_which(media_room):
    chat = media_room
    first = await opened_moot(chat, present=())
    second = await opened_moot(chat, present=())
    usage = {
        "!here": 'Usage: !here [@user:server|"Display Name"]',
        "!suggest Meet monthly": "Usage: !suggest TEXT",
        "!debate": "Usage: !debate [ID]",
        "!options": "Usage: !options [ID]",
        "!vote": "Usage: !vote [ID]",
        "!ballot status": "Usage: !ballot status [ID]",
    }
    for command, line in usage.items():
        assert await chat.text(ANA, command) == (
            f"Several meetings are under way in this room ({first} and {second}): give "
            f"the ID of the one you mean.\n{line}"
        )
    # With the ID first, each command finds its meeting.
    assert (await chat.text(ANA, f"!here {second}")).startswith(
        f"You are on the roll call of {second}."
    )
    assert await chat.text(ANA, f"!suggest {second.lower()} Meet monthly") == (
        f"Suggestion 1 for {second} is written down: {shown('Meet monthly')}"
    )
    # A meeting still being planned does not count for the commands of a meeting under
    # way, but does for the planning ones.
    planned = ref_in(await chat.text(ANA, "!moot call Another question?"))
    assert "Several meetings" in await chat.text(ANA, "!notify")
    assert (await chat.text(ANA, f"!here {first}")).startswith("You are on the roll call")
    assert planned not in await chat.text(ANA, "!debate")


async def test_an_id_that_is_unknown_or_not_an_id(media_room):
    assert await media_room.text(ANA, "!start M-99") == (
        "There is no meeting M-99.\nUsage: !start [ID]"
    )
    assert await media_room.text(ANA, f"!start m-{'9' * 30}") == (
        f"There is no meeting M-{'9' * 30}.\nUsage: !start [ID]"
    )
    assert await media_room.text(ANA, "!start soon") == (
        "“soon” is not an ID. IDs look like M-12.\nUsage: !start [ID]"
    )
    assert await media_room.text(ANA, "!notify", room=OTHER_ROOM) == (
        "No meeting is under way in this room: give the meeting's ID, like M-12.\n"
        "Usage: !notify [ID]"
    )


# Misuse, command by command: what was wrong, and the usage line where the input was at
# fault; nothing is written by a refused command.


async def test_moot_call_misuse(media_room):
    chat = media_room
    before = await row_counts(chat.ctx)
    assert await chat.text(ANA, "!moot call") == (
        "QUESTION is missing.\nUsage: !moot call QUESTION [--topic TOPIC]"
    )
    assert await chat.text(ANA, f"!moot call {QUESTION} --topic") == (
        "--topic needs a value.\nUsage: !moot call QUESTION [--topic TOPIC]"
    )
    assert await chat.text(ANA, "!moot call --topic Newsletters") == (
        "QUESTION is missing.\nUsage: !moot call QUESTION [--topic TOPIC]"
    )
    suspended = await chat.text(IRIS, f"!moot call {QUESTION}")
    assert suspended.startswith("Sorry, you are suspended until 31 January 2027")
    assert "ask your secretary to add you" in await chat.text(STRANGER, f"!moot call {QUESTION}")
    # Hamza is in no assembly of this room.
    assert await chat.text(HAMZA, f"!moot call {QUESTION}") == (
        "Only a member of Media Working Group, or the General Secretary, can call its Moot."
    )
    assert await row_counts(chat.ctx) == before


async def test_thing_misuse(media_room):
    chat = media_room
    before = await row_counts(chat.ctx)
    usage = "Usage: !thing call QUESTION --assemblies A,B"
    assert await chat.text(ANA, "!thing call Shared rota?") == (
        f"Say which assemblies hold the Thing together, with --assemblies A,B.\n{usage}"
    )
    assert await chat.text(ANA, f"!thing call Shared rota? --assemblies {MEDIA}") == (
        "A Thing of Assemblies needs at least two assemblies, for example --assemblies a,b."
        f"\n{usage}"
    )
    assert await chat.text(ANA, f"!thing call Shared rota? --assemblies {MEDIA},nowhere") == (
        f"There is no assembly called “nowhere”.\n{usage}"
    )
    assert await chat.text(ELIF, f"!thing call Shared rota? --assemblies {MEDIA},{OWG}") == (
        "Only a secretary of Media Working Group and Operational Working Group, or the "
        "General Secretary, can do this."
    )
    assert await chat.text(ANA, "!thing agree") == (
        "No meeting is under way in this room: give the meeting's ID, like M-12.\n"
        "Usage: !thing agree [ID]"
    )
    assert await row_counts(chat.ctx) == before
    moot = ref_in(await chat.text(ANA, f"!moot call {QUESTION}"))
    assert await chat.text(ANA, "!thing agree") == (
        "Only a Thing of Assemblies needs its assemblies to agree to it."
    )
    thing = ref_in(
        await chat.text(
            BRYN, f"!thing call Rota? --assemblies {COMMITTEE},{MEDIA}", room=OTHER_ROOM
        )
    )
    assert moot != thing
    assert await chat.text(ELIF, f"!thing agree {thing}") == (
        "Only a secretary of Media Working Group, or the General Secretary, can agree to this "
        "Thing for them."
    )


async def test_prepare_misuse(media_room):
    chat = media_room
    ref = ref_in(await chat.text(ANA, f"!moot call {QUESTION}"))
    before = await row_counts(chat.ctx)
    usage = "Usage: !prepare [ID] facts|materials TEXT"
    assert await chat.text(ANA, "!prepare") == (
        f"Say which step: facts or materials, then the text.\n{usage}"
    )
    assert await chat.text(ANA, f"!prepare {ref}") == (
        f"Say which step: facts or materials, then the text.\n{usage}"
    )
    assert await chat.text(ANA, "!prepare date 2026-12-01") == (
        f"“date” is not a step: write facts or materials.\n{usage}"
    )
    assert await chat.text(ANA, "!prepare facts") == f"TEXT is missing.\n{usage}"
    assert await chat.text(ELIF, "!prepare facts Survey") == (
        "Only a secretary of Media Working Group, or the General Secretary, can do this."
    )
    assert await chat.text(ANA, "!prepare facts " + "x" * 2001) == (
        f"That is too long (at most 2000 characters).\n{usage}"
    )
    assert await row_counts(chat.ctx) == before


SCHEDULE_USAGE = (
    "Usage: !schedule [ID] YYYY-MM-DD HH:MM [--place TEXT] [--online URL] [--access TEXT] "
    "[--route TEXT] [--reason TEXT]"
)
WHERE = '--place Hall --access "Step-free"'


async def test_schedule_misuse(media_room):
    chat = media_room
    ref = ref_in(await chat.text(ANA, f"!moot call {QUESTION}"))
    before = await row_counts(chat.ctx)
    wrong = {
        "!schedule": "YYYY-MM-DD is missing.",
        f"!schedule {ref}": "YYYY-MM-DD is missing.",
        "!schedule 2026-11-12": "HH:MM is missing.",
        f"!schedule {ref} 2026-11-12 {WHERE}": "HH:MM is missing.",
        f"!schedule 12/11/2026 19:00 {WHERE}": (
            "“12/11/2026” is not a date. Write the date as YYYY-MM-DD, for example 2026-12-01."
        ),
        f"!schedule 2026-02-30 19:00 {WHERE}": (
            "“2026-02-30” is not a day of the calendar: check the month and the day."
        ),
        f"!schedule 2026-11-12 25:00 {WHERE}": (
            "“25:00” is not a time. Write the time as HH:MM on the 24-hour clock, for "
            "example 19:30."
        ),
        f"!schedule 2026-11-12 7pm {WHERE}": (
            "“7pm” is not a time. Write the time as HH:MM on the 24-hour clock, for example 19:30."
        ),
        f"!schedule 2026-11-12 19:00 tomorrow {WHERE}": "“tomorrow” was not expected here.",
        f"!schedule {ref} 2026-11-12 19:00 tomorrow": "“tomorrow” was not expected here.",
        "!schedule 2026-11-12 19:00 --plac Hall": "!schedule has no option --plac.",
        "!schedule 2026-11-12 19:00 --access Ramp": (
            "Give a place (--place) or an online link (--online), or both."
        ),
        "!schedule 2026-11-12 19:00 --place Hall": (
            "Say how disabled members can take part (--access), for example: step-free "
            "entrance, captions on the call, documents in large print."
        ),
    }
    for command, problem in wrong.items():
        assert await chat.text(ANA, command) == f"{problem}\n{SCHEDULE_USAGE}", command
    # The rules of the constitution: no usage line, the input was well formed.
    assert await chat.text(ANA, f"!schedule 2026-11-01 19:00 {WHERE}") == (
        "The date must be in the future."
    )
    assert await chat.text(ANA, f"!schedule 2026-11-30 19:00 {WHERE}") == (
        "This date is 28 days after planning began. The limit is 14 days. Choose an earlier "
        "date, or give the reason with --reason; the reason is published to everyone eligible."
    )
    assert await chat.text(ELIF, f"!schedule 2026-11-12 19:00 {WHERE}") == (
        "Only a secretary of Media Working Group, or the General Secretary, can do this."
    )
    assert await row_counts(chat.ctx) == before


async def test_a_date_beyond_the_limit_with_a_reason_is_announced(media_room):
    chat = media_room
    ref = ref_in(await chat.text(ANA, f"!moot call {QUESTION}"))
    text = await chat.text(
        ANA, f'!schedule 2026-11-30 19:00 {WHERE} --reason "The hall is booked until then"'
    )
    assert text.splitlines() == [
        f"{ref} is set for Monday, 30 November 2026, 19:00 (Greenwich Mean Time).",
        "That is beyond the usual limit of 14 days, so your reason is announced to everyone "
        "eligible.",
        "Next, tell everyone who may take part. Send: !notify [ID]",
    ]


async def test_schedule_is_in_london_time_summer_and_winter(media_room, clock):
    chat = media_room
    clock.current = datetime(2027, 3, 20, 9, 0, tzinfo=UTC)
    ref = ref_in(await chat.text(ANA, f"!moot call {QUESTION}"))
    # The clocks go forward at 01:00 on 28 March 2027: 01:30 does not exist that night.
    assert await chat.text(ANA, f"!schedule 2027-03-28 01:30 {WHERE}") == (
        "2027-03-28 01:30 does not exist in Europe/London: the clocks go forward then. "
        f"Choose another time.\n{SCHEDULE_USAGE}"
    )
    # A summer evening at 19:00 in London is 18:00 UTC.
    text = await chat.text(ANA, f"!schedule {ref} 2027-04-01 19.00 {WHERE}")
    assert text.startswith(f"{ref} is set for Thursday, 1 April 2027, 19:00 (British Summer Time).")
    starts_at = (await meetings.meeting_summary(chat.ctx, ref)).starts_at
    assert starts_at == datetime(2027, 4, 1, 18, 0, tzinfo=UTC)


def test_local_times_that_happen_twice_or_never_are_refused():
    zone = "Europe/London"
    with pytest.raises(InvalidInput, match="happens twice"):
        local_moment(date(2026, 10, 25), time(1, 30), zone)
    with pytest.raises(InvalidInput, match="does not exist"):
        local_moment(date(2027, 3, 28), time(1, 0), zone)
    assert local_moment(date(2026, 10, 25), time(2, 0), zone) == datetime(
        2026, 10, 25, 2, 0, tzinfo=UTC
    )
    assert local_moment(date(2026, 10, 25), time(0, 59), zone) == datetime(
        2026, 10, 24, 23, 59, tzinfo=UTC
    )


async def test_notify_start_and_cancel_misuse(media_room, clock):
    await read_english(media_room.ctx)
    chat = media_room
    ref = await prepared_moot(chat.ctx, wait_for_start=False)
    before = await row_counts(chat.ctx)
    assert await chat.text(ELIF, "!notify") == (
        "Only a secretary of Media Working Group, or the General Secretary, can do this."
    )
    too_early = await chat.text(ANA, "!start")
    assert too_early.startswith("It is too early: the meeting is announced for ")
    assert await chat.text(ANA, "!start M-1 M-2") == (
        "“M-2” was not expected here.\nUsage: !start [ID]"
    )
    assert await chat.text(ANA, "!cancel") == "REASON is missing.\nUsage: !cancel [ID] REASON"
    assert await chat.text(ANA, f"!cancel {ref}") == (
        "REASON is missing.\nUsage: !cancel [ID] REASON"
    )
    assert await chat.text(GWEN, "!cancel Nobody can come") == (
        "Only a secretary of Media Working Group, or the General Secretary, can do this."
    )
    assert await row_counts(chat.ctx) == before
    assert await chat.text(ANA, "!cancel The hall burned down") == f"{ref} is cancelled."
    assert (await meetings.meeting_summary(chat.ctx, ref)).phase == "cancelled"
    async with chat.ctx.transaction() as session:
        event = await session.scalar(
            select(AuditEvent).where(AuditEvent.action == "meeting.cancel")
        )
    assert event is not None and event.details == {"reason": "The hall burned down"}
    assert await chat.text(ANA, f"!cancel {ref} Again") == "This meeting has already finished."


async def test_here_misuse(media_room):
    await read_english(media_room.ctx)
    chat = media_room
    planned = await prepared_moot(chat.ctx, wait_for_start=False)
    usage = 'Usage: !here [@user:server|"Display Name"]'
    assert await chat.text(ANA, "!here") == (
        "No meeting is under way in this room: give the meeting's ID, like M-12.\n" + usage
    )
    assert await chat.text(ANA, f"!here {planned}") == (
        "The roll call is open only while the meeting is in progress."
    )
    await to_start(chat.ctx, planned)
    await roll_call.open_meeting(chat.ctx, ANA, planned)
    before = await row_counts(chat.ctx)
    assert await chat.text(ELIF, f"!here {GWEN}") == (
        "Only a secretary or moderator of Media Working Group, or the General Secretary, can "
        "do this."
    )
    assert await chat.text(ANA, '!here "Nobody Here"') == (
        f"Nobody on the party's register is called “{shown('Nobody Here')}”. Give their Matrix ID "
        f"(@name:server), or ask a secretary to add them.\n{usage}"
    )
    assert await chat.text(ANA, f"!here {STRANGER}") == (
        f"{STRANGER} is not on the party's register. Ask a secretary to add them.\n{usage}"
    )
    assert await chat.text(ANA, "!here @Gwen:harmony.uk") == (
        "“@Gwen:harmony.uk” has “G” before the colon. There, Matrix user IDs use only "
        f"lower-case letters, digits and these characters: . _ = - / +\n{usage}"
    )
    # Who is on the register is not everybody's business: a member who may not record
    # others is refused before anyone is looked up.
    assert await chat.text(ELIF, '!here "Nobody Here"') == (
        "Only a secretary or moderator of Media Working Group, or the General Secretary, can "
        "do this."
    )
    # The refusal names the suspended attendee, not the secretary who asked.
    assert await chat.text(ANA, f"!here {IRIS}") == (
        "Iris Walker is suspended, so cannot take part in the meeting."
    )
    assert (await chat.text(IRIS, "!here")).startswith("Sorry, you are suspended until")
    assert await chat.text(HAMZA, "!here") == (
        "Hamza Ali is not a member of the assemblies in this meeting and not a party Member, "
        "so cannot take part."
    )
    assert await row_counts(chat.ctx) == before
    # Two people with the same name: the secretary is asked which, by Matrix ID.
    async with chat.ctx.transaction() as session:
        session.add(
            Person(
                matrix_id="@ana:elsewhere.org",
                display_name="ana  LIMA",
                status="member",
                language="en",
                created_at=chat.ctx.now(),
            )
        )
    assert await chat.text(ANA, "!here Ana Lima") == (
        f"Several people are called “{shown('Ana Lima')}”: @ana:elsewhere.org and "
        "@ana:harmony.uk. Give "
        f"the Matrix ID of the one you mean.\n{usage}"
    )
    # A moderator of the assembly may record people too; Bryn moderates another one.
    assert "Only a secretary or moderator" in await chat.text(BRYN, f"!here {ELIF}")


async def test_suggest_misuse(media_room):
    chat = media_room
    planned = await prepared_moot(chat.ctx, wait_for_start=False)
    usage = "Usage: !suggest TEXT"
    assert await chat.text(ELIF, "!suggest") == f"TEXT is missing.\n{usage}"
    assert await chat.text(ELIF, f"!suggest {planned}") == f"TEXT is missing.\n{usage}"
    # Before the meeting opens: in the room, none is under way; by its ID, the rule.
    assert await chat.text(ELIF, "!suggest Meet monthly") == (
        f"No meeting is under way in this room: give the meeting's ID, like M-12.\n{usage}"
    )
    assert await chat.text(ELIF, f"!suggest {planned} Meet monthly") == (
        "Suggestions are made during the discussion and the debate. The meeting is still "
        "being planned."
    )
    await to_start(chat.ctx, planned)
    await roll_call.open_meeting(chat.ctx, ANA, planned)
    before = await row_counts(chat.ctx)
    assert (await chat.text(IRIS, "!suggest Meet monthly")).startswith("Sorry, you are suspended")
    assert await chat.text(HAMZA, "!suggest Meet monthly") == (
        "Only people eligible for this meeting can make suggestions in it."
    )
    assert await row_counts(chat.ctx) == before


async def test_debate_and_vote_misuse(media_room):
    chat = media_room
    ref = await opened_moot(chat, present=(ANA, GWEN))
    before = await row_counts(chat.ctx)
    assert await chat.text(ELIF, "!debate") == (
        "Only a secretary of Media Working Group, or the General Secretary, can do this."
    )
    assert await chat.text(ANA, "!vote") == (
        "Only a debate in progress can be ended. The meeting is in its discussion phase."
    )
    assert await row_counts(chat.ctx) == before
    await chat.ask(ANA, "!debate")
    assert await chat.text(ANA, "!debate") == (
        "The debate begins after the discussion. The meeting is in its debate phase."
    )
    assert await chat.text(ANA, "!vote") == (
        "There are no options yet. Add at least one option first."
    )
    await chat.ask(ANA, "!option add Meet monthly")
    # Two of the four needed are present.
    assert await chat.text(ANA, f"!vote {ref}") == (
        "Quorum has not been reached, so the meeting cannot decide yet."
    )
    assert (await meetings.meeting_summary(chat.ctx, ref)).phase == "debate"


async def test_option_misuse(media_room):
    await read_english(media_room.ctx)
    chat = media_room
    ref = await opened_moot(chat)
    assert await chat.text(ANA, "!option add Meet monthly") == (
        "Options are changed during the debate. The meeting is in its discussion phase."
    )
    await chat.ask(ANA, "!debate")
    await chat.ask(ANA, "!option add Meet monthly")
    await chat.ask(ANA, "!option add Meet yearly")
    before = await row_counts(chat.ctx)
    add = "Usage: !option add TEXT"
    merge = "Usage: !option merge N M... TEXT"
    withdraw = "Usage: !option withdraw N"
    wrong = {
        "!option add": f"TEXT is missing.\n{add}",
        f"!option add {ref}": f"TEXT is missing.\n{add}",
        "!option merge": (
            "Give the numbers of at least two options, then the text of the merged option.\n"
            + merge
        ),
        "!option merge 1 Meet sometimes": (
            "Give the numbers of at least two options, then the text of the merged option.\n"
            + merge
        ),
        "!option merge 1 2": f"TEXT is missing.\n{merge}",
        "!option merge 1 9 Meet sometimes": (f"There is no option 9 in this meeting.\n{merge}"),
        "!option withdraw": f"N is missing.\n{withdraw}",
        "!option withdraw two": (
            f"“two” is not an option number: give the number, like 2.\n{withdraw}"
        ),
        "!option withdraw 1 2": f"“2” was not expected here.\n{withdraw}",
        "!option withdraw 9": f"There is no option 9 in this meeting.\n{withdraw}",
        # Too big for the database's integers: unknown, not a failure.
        f"!option withdraw {'9' * 30}": (
            f"There is no option {'9' * 30} in this meeting.\n{withdraw}"
        ),
        f"!option merge 1 {'9' * 30} Text": (
            f"There is no option {'9' * 30} in this meeting.\n{merge}"
        ),
        "!option": (
            "There is no command !option.\nUsage:\n- !option add TEXT\n"
            "- !option merge N M... TEXT\n- !option withdraw N"
        ),
    }
    for command, answer in wrong.items():
        assert await chat.text(ANA, command) == answer, command
    for who in (ELIF, BRYN):  # a member; a moderator of another assembly
        assert await chat.text(who, "!option add Meet weekly") == (
            "Only a secretary or moderator of Media Working Group, or the General Secretary, "
            "can do this."
        )
    assert await row_counts(chat.ctx) == before
    await chat.ask(ANA, f"!option withdraw {ref} 2")
    assert await chat.text(ANA, "!option withdraw 2") == "Option 2 is no longer open."
    assert await chat.text(ANA, "!option merge 1 2 Meet sometimes") == (
        "Option 2 is no longer open."
    )


async def test_ballot_misuse(media_room, clock):
    chat = media_room
    ref = await debating_moot(chat, ("Monthly", "Yearly"))
    usage = "Usage: !ballot open [ID] [--closes DURATION]"
    assert await chat.text(ANA, "!ballot open") == (
        "A ballot opens when the debate has ended with two or more options."
    )
    assert await chat.text(ANA, "!ballot status") == (
        f"{ref} has no ballot in this vote.\nUsage: !ballot status [ID]"
    )
    assert await chat.text(ANA, "!ballot close") == f"There is no open ballot in {ref}."
    await chat.ask(ANA, "!vote")
    before = await row_counts(chat.ctx)
    keys_before = (
        sorted(chat.ctx.ballot_keys_path.glob("*")) if chat.ctx.ballot_keys_path.exists() else []
    )
    wrong = {
        "!ballot open --closes soon": (
            "“soon” is not a length of time. Write a number of days (d), hours (h) or "
            "minutes (m), for example 90m, 36h, 2d or 1d12h."
        ),
        "!ballot open --closes 90": (
            "“90” is not a length of time. Write a number of days (d), hours (h) or "
            "minutes (m), for example 90m, 36h, 2d or 1d12h."
        ),
        "!ballot open --closes 0h": "The ballot must stay open for some time: give more than 0.",
        "!ballot open --closes -2d": "The ballot must stay open for some time: give more than 0.",
        "!ballot open --closes 61d": "A ballot can stay open for at most 60 days; “61d” is longer.",
        "!ballot open --closes 99999999999999999999d": (
            "A ballot can stay open for at most 60 days; “99999999999999999999d” is longer."
        ),
    }
    for command, problem in wrong.items():
        assert await chat.text(ANA, command) == f"{problem}\n{usage}", command
    # The parser's answers show the family's usage lines.
    family = (
        "Usage:\n- !ballot open [ID] [--closes DURATION]\n- !ballot close [ID]\n"
        "- !ballot status [ID]\n- !ballot paper [ID]"
    )
    parsed = {
        "!ballot open --closes": "--closes needs a value.",
        "!ballot open --close 2d": "!ballot open has no option --close.",
        "!ballot open M-1 M-2": "“M-2” was not expected here.",
    }
    for command, problem in parsed.items():
        assert await chat.text(ANA, command) == f"{problem}\n{family}", command
    assert await chat.text(ELIF, "!ballot open") == (
        "Only a secretary of Media Working Group, or the General Secretary, can do this."
    )
    assert (await chat.text(IRIS, "!ballot open")).startswith("Sorry, you are suspended")
    assert await row_counts(chat.ctx) == before
    after = (
        sorted(chat.ctx.ballot_keys_path.glob("*")) if chat.ctx.ballot_keys_path.exists() else []
    )
    assert after == keys_before  # a refused opening leaves no round key behind
    await chat.ask(ANA, "!ballot open --closes 2d")
    assert await chat.text(ANA, "!ballot open") == (
        "The ballot for this vote has already been opened."
    )
    assert await chat.text(ELIF, "!ballot close") == (
        "Only a secretary of Media Working Group, or the General Secretary, can do this."
    )


# Hostile text: shown as text, never as markup or a mention; too long is refused.

HOSTILE = (
    '<script>alert("x")</script> <a href="https://evil.example">click</a> @room '
    "**bold** [link](https://evil.example) \u202eevil\u202c \u200fمرحبا @ana:harmony.uk"
)


async def test_hostile_text_is_shown_as_text(media_room):
    chat = media_room
    called = await chat.ask(ANA, f"!moot call {HOSTILE}")
    ref = ref_in(plain(called))
    await to_start_after_preparing(chat, ref)
    for who in MEDIA_MEMBERS:
        await roll_call.record_attendance(chat.ctx, who, ref)
    suggested = await chat.ask(ELIF, f"!suggest {HOSTILE}")
    await chat.ask(ANA, "!debate")
    option = await chat.ask(ANA, f"!option add {HOSTILE}")
    listed = await chat.ask(ANA, "!options")
    for reply, sender in ((called, ANA), (suggested, ELIF), (option, ANA), (listed, ANA)):
        body = html(reply)
        assert "<script" not in body and "<a " not in body and "<strong>bold" not in body
        assert "&lt;script&gt;" in body and "&lt;a href=" in body
        assert "**bold** [link](https://evil.example)" in body
        assert isolated(HOSTILE) in plain(reply)
        content = matrix_content(reply)
        # Only the sender is pinged: not @room, not Ana named in the text.
        assert content["m.mentions"] == {"user_ids": [sender]}
    # The text is stored as typed.
    [stored] = await debate.active_options(chat.ctx, ref)
    assert stored.text == HOSTILE


async def to_start_after_preparing(chat: Chat, ref: str) -> None:
    await chat.ask(ANA, "!prepare facts Facts")
    await chat.ask(ANA, "!prepare materials Materials")
    await chat.ask(ANA, f"!schedule 2026-11-12 19:00 {WHERE}")
    await chat.ask(ANA, "!notify")
    await to_start(chat.ctx, ref)
    await chat.ask(ANA, "!start")


async def test_text_too_long_is_refused_cleanly(media_room):
    chat = media_room
    long = "<b>@room</b> " + "x" * 10_000
    before = await row_counts(chat.ctx)
    refused = await chat.ask(ANA, f"!moot call {long}")
    assert plain(refused) == (
        "The question is too long (at most 1000 characters).\n"
        "Usage: !moot call QUESTION [--topic TOPIC]"
    )
    assert await row_counts(chat.ctx) == before
    ref = await debating_moot(chat)
    before = await row_counts(chat.ctx)
    assert await chat.text(ELIF, f"!suggest {long}") == (
        "That is too long (at most 2000 characters).\nUsage: !suggest TEXT"
    )
    assert await chat.text(ANA, f"!option add {ref} {long}") == (
        "That is too long (at most 2000 characters).\nUsage: !option add TEXT"
    )
    assert await row_counts(chat.ctx) == before


# The pieces: durations, local times, isolated text


@given(
    days=st.integers(0, 100),
    hours=st.integers(0, 100),
    minutes=st.integers(0, 10_000),
    spaced=st.booleans(),
    upper=st.booleans(),
)
def test_a_duration_is_its_days_hours_and_minutes(days, hours, minutes, spaced, upper):
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    typed = (" " if spaced else "").join(parts)
    typed = typed.upper() if upper else typed
    expected = timedelta(days=days, hours=hours, minutes=minutes)
    if not parts or expected > LONGEST_BALLOT:
        with pytest.raises(InvalidInput):
            parse_duration(typed)
    else:
        assert parse_duration(typed) == expected


@given(st.text())
def test_any_text_is_a_duration_or_refused_with_a_message(text):
    try:
        duration = parse_duration(text)
    except InvalidInput as error:
        refusal = error.message.render("en")
        assert refusal.endswith(".")
        return
    assert timedelta(0) < duration <= LONGEST_BALLOT


@given(
    st.text(alphabet=st.sampled_from("ab\u2066\u2067\u2068\u2069\u202a\u202b\u202c\u202d\u202e\n"))
)
def test_a_members_text_cannot_escape_its_isolate(text):
    shown_text = isolated(text)
    # Every character the member typed is kept, in order.
    assert shown_text.replace("\u2068", "").replace("\u2069", "") == (
        text.replace("\u2068", "").replace("\u2069", "")
    )
    for paragraph in shown_text.split("\n"):
        depth = 0
        for character in paragraph:
            if character in "\u2066\u2067\u2068":
                depth += 1
            elif character == "\u2069":
                # A pop never closes more than was opened within the text's isolate...
                assert depth > 0
                depth -= 1
            else:
                # ...so every character of the text is inside it.
                assert depth > 0
        assert depth == 0
