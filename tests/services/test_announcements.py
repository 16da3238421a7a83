"""What the meeting's room reads: an announcement at each turn of the meeting, and one
state message kept up to date rather than a flood. Read from the outbox, as the bot
sends it."""

from dataclasses import replace
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import select, update

from harmony_matrix.config import PartySettings, load_config
from harmony_matrix.constitution.process import Phase
from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import Message
from harmony_matrix.i18n import isolated as iso
from harmony_matrix.services import (
    ballots,
    debate,
    meeting_state,
    meetings,
    paper_votes,
    preparation,
    roll_call,
)
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.meeting_announcements import (
    announce_result,
    default_moderating_rules,
)
from harmony_matrix.storage.models import (
    Assembly,
    BallotRound,
    ConsensusRecord,
    Meeting,
    OutboxMessage,
)
from harmony_matrix.voting.star import tabulate
from tests.ballots.helpers import deliver_links, meeting_at_vote, path_of, voters

from .helpers import ANA, CHLOE, ELIF, GWEN, MEDIA, OWG, prepared_moot

MEDIA_PRESENT = [ANA, CHLOE, GWEN, ELIF]
HEADER = "1. Print only,2. Email only,3. Both\n"
HOSTILE = "<b>Bold</b> @room **not bold** [link](https://evil.example) \u202eevil\u202c"


async def _room(ctx: ServiceContext, meeting_id: int) -> list[OutboxMessage]:
    """Everything queued for the meeting's room, in order."""
    async with ctx.transaction() as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.destination == f"meeting:{meeting_id}")
                .order_by(OutboxMessage.id)
            )
        )


def _keys(rows: list[OutboxMessage]) -> list[str]:
    return [row.dedupe_key for row in rows]


def _states(rows: list[OutboxMessage]) -> list[str]:
    return [row.body for row in rows if row.pin_key is not None]


def _body(rows: list[OutboxMessage], prefix: str) -> str:
    [row] = [row for row in rows if row.dedupe_key.startswith(prefix)]
    return row.body


def _id(ref: str) -> int:
    return int(ref.removeprefix("M-"))


async def _open_with_quorum(ctx, ref: str) -> None:
    await roll_call.open_meeting(ctx, ANA, ref)
    for who in MEDIA_PRESENT:
        await roll_call.record_attendance(ctx, who, ref)


async def _cast(ctx, links: dict[str, str], ballots_by_person: dict[str, dict[int, int]]) -> None:
    for who, scores in ballots_by_person.items():
        await ballots.cast_ballot(ctx, path_of(links[who]), scores)


# --- A whole Moot ---------------------------------------------------------------------


async def test_a_whole_moot_tells_its_room_each_step_and_keeps_one_state(demo, clock):
    ref = await prepared_moot(demo)
    m = _id(ref)
    await roll_call.open_meeting(demo, ANA, ref)
    for who in MEDIA_PRESENT:
        await roll_call.record_attendance(demo, who, ref)
    # Retried commands queue nothing twice.
    await roll_call.record_attendance(demo, GWEN, ref)
    await roll_call.record_attendance(demo, ANA, ref, who=ELIF)
    assert await preparation.notify(demo, ANA, ref) == 0
    await debate.add_suggestion(demo, CHLOE, ref, "A printed newsletter")
    await debate.add_suggestion(demo, GWEN, ref, "An email newsletter")
    await debate.start_debate(demo, ANA, ref)
    for text in ("Print only", "Email only", "Both"):
        await debate.add_option(demo, ANA, ref, text)
    await debate.withdraw_option(demo, ANA, ref, 3)
    await debate.end_debate(demo, ANA, ref)
    opened = await ballots.open_ballot(demo, ANA, ref)
    links = await deliver_links(demo)
    # A runoff tie broken on total score: "Email only" wins.
    scores = {
        ANA: {1: 5, 2: 4},
        CHLOE: {1: 5, 2: 4},
        GWEN: {1: 0, 2: 5},
        ELIF: {1: 2, 2: 5},
    }
    await _cast(demo, links, scores)
    before_close = await _room(demo, m)
    # Casting queues nothing: nothing about a cast ballot carries a time.
    assert _keys(before_close)[-1] == f"meeting-state:{m}:14"
    # A timer may show the turnout; doing it again changes nothing.
    assert await meeting_state.refresh_state(demo, ref)
    assert not await meeting_state.refresh_state(demo, ref)
    await ballots.close_ballot(demo, ANA, ref)

    rows = await _room(demo, m)
    async with demo.transaction() as session:
        record = await session.scalar(select(ConsensusRecord))
    assert record is not None
    state = [f"meeting-state:{m}:{n}" for n in range(1, 17)]
    assert (
        _keys(rows)
        == [
            f"notice-ics:{m}:1:meeting",
            f"opened:{m}",
            state[0],
            *state[1:5],  # four people answer the roll call
            *state[5:7],  # two suggestions
            f"debate:{m}",
            state[7],
            *state[8:11],  # three options
            state[11],  # one withdrawn
            f"vote:{m}:1",
            state[12],
            f"ballot-open:{opened.round_id}",
            state[13],
            state[14],  # the turnout, shown by the timer
            f"result:{opened.round_id}",
            f"consensus:{record.id}:meeting",
            state[15],
        ]
    )
    assert {row.pin_key for row in rows if row.dedupe_key.startswith("meeting-state:")} == {
        f"meeting-state:{m}"
    }
    assert all(row.pin_key is None for row in rows if not row.dedupe_key.startswith("meeting-"))
    assert all(not row.is_direct and row.language == "en" for row in rows)
    states = _states(rows)
    # Each version differs from the one before; withdrawing the third option returns to
    # an earlier wording, which is still a new version to show.
    assert all(before != after for before, after in pairwise(states))
    assert states[11] == states[9]

    # The states, as a screen reader would read them: short lines, whole sentences.
    assert "The meeting is in its discussion phase." in states[0]
    assert "Send !here to answer the roll call." in states[0]
    assert "Quorum is not reached yet." in states[0]
    assert "Media Working Group: 4 present, 4 needed; reached." in states[4]
    assert "Quorum is reached." in states[4]
    assert f"1. {iso('A printed newsletter')}\n2. {iso('An email newsletter')}" in states[6]
    assert "The meeting is in its debate phase." in states[7]
    assert f"These are the options:\n1. {iso('Print only')}\n2. {iso('Email only')}" in states[11]
    assert f"3. {iso('Both')}" in states[10] and "Both" not in states[11]
    assert "The meeting is voting." in states[12]
    assert "0 of 4 people have voted so far." in states[13]
    assert "4 of 4 people have voted so far." in states[14]
    assert "The ballot closes on" in states[13]
    assert f"The decision: {iso('Email only')}" in states[15]
    assert "The meeting has reached consensus." in states[15]
    # Never who: no voter's name in any state.
    for name in ("Ana Lima", "Chloé Martin", "Gwen Morgan", "Elif Kaya"):
        assert not any(name in body for body in states)
    assert all(len(line) <= 320 for body in states for line in body.split("\n"))

    opened_text = _body(rows, "opened:")
    assert f"Assembly Moot {ref} has started." in opened_text
    assert "send !here" in opened_text
    debate_text = _body(rows, "debate:")
    assert default_moderating_rules().render("en") in debate_text
    vote_text = _body(rows, "vote:")
    assert f"The options are:\n1. {iso('Print only')}\n2. {iso('Email only')}\n" in vote_text
    instructions = _body(rows, "ballot-open:")
    for expected in (
        "direct message",
        "from 0 to 5",
        "secret",
        "Send !here",
        "ask the secretary",
        "The ballot closes on",
    ):
        assert expected in instructions
    # The closing time in the party's zone: 2026-11-15 10:00 UTC is 10:00 GMT.
    assert "(Greenwich Mean Time)" in instructions

    result = _body(rows, "result:")
    counted = tabulate(
        [[5, 4], [5, 4], [0, 5], [2, 5]],
        ["1. Print only", "2. Email only"],
    )
    kinds = [step.kind for step in counted.steps]
    assert kinds == ["scores", "finalists", "runoff_tie", "runoff_tie_score", "winner"]
    # The options' names are isolated in the room's text (services/meeting_announcements.py).
    for line in tabulate(
        [[5, 4], [5, 4], [0, 5], [2, 5]], [iso("1. Print only"), iso("2. Email only")]
    ).explain("en"):
        assert line in result
    assert f"The winning option is {iso('2. Email only')}." in result
    assert "4 of 4 people voted." in result
    assert f"http://127.0.0.1:8080/meetings/{ref}/ballots.csv" in result
    assert f"http://127.0.0.1:8080/meetings/{ref}/results" in result
    assert "Party Consensus" not in result
    assert record.hash in _body(rows, "consensus:")


# --- Results ------------------------------------------------------------------------


async def _at_paper_vote(ctx, *, topic: str | None = None) -> str:
    if topic is None:
        ref = await prepared_moot(ctx)
    else:
        called = await meetings.call_moot(ctx, ANA, MEDIA, "How do we caption videos?", topic=topic)
        ctx.rules = replace(ctx.rules, require_preparation=False)
        ref = called.ref
    await _open_with_quorum(ctx, ref)
    await debate.start_debate(ctx, ANA, ref)
    for text in ("Print only", "Email only", "Both"):
        await debate.add_option(ctx, ANA, ref, text)
    await debate.end_debate(ctx, ANA, ref)
    return ref


async def test_no_clear_winner_then_a_second_round_that_decides(demo):
    ref = await _at_paper_vote(demo)
    m = _id(ref)
    first_csv = HEADER + "5,0,0\n0,5,0\n5,0,0\n0,5,0\n"
    first = await paper_votes.enter_paper_vote(demo, ANA, ref, first_csv.encode())
    rows = await _room(demo, m)
    result = _body(rows, f"result:{first.round_id}")
    counted_scores = [[5, 0, 0], [0, 5, 0], [5, 0, 0], [0, 5, 0]]
    names = list(HEADER.strip().split(","))
    counted = tabulate(counted_scores, names)
    assert counted.no_clear_winner
    assert "no_clear_winner" in [step.kind for step in counted.steps]
    assert "runoff_lot" in [step.kind for step in counted.steps]
    # The options' names are isolated in the room's text (services/meeting_announcements.py).
    for line in tabulate(counted_scores, [iso(name) for name in names]).explain("en"):
        assert line in result
    assert "There is no clear winner. The meeting goes back to debate" in result
    assert "The paper ballots for" in result and "4 paper ballots were counted." in result
    assert not any(row.dedupe_key.startswith("consensus:") for row in rows)
    # The state says the meeting debates again, with the options still open.
    state = _states(rows)[-1]
    assert "The meeting is in its debate phase." in state
    assert "The last vote had no clear winner. The meeting goes back to debate" in state
    assert f"These are the options:\n1. {iso('Print only')}" in state

    # The debate ends again, the vote is announced as round 2, and this time it decides:
    # "Print only" wins the runoff though "Email only" scored more in total.
    await debate.end_debate(demo, ANA, ref)
    second_csv = HEADER + "5,4,0\n5,4,0\n5,4,0\n0,5,0\n"
    second = await paper_votes.enter_paper_vote(demo, ANA, ref, second_csv.encode())
    rows = await _room(demo, m)
    assert len([row for row in rows if row.dedupe_key.startswith("vote:")]) == 2
    result = _body(rows, f"result:{second.round_id}")
    counted = tabulate(
        [[5, 4, 0], [5, 4, 0], [5, 4, 0], [0, 5, 0]], list(HEADER.strip().split(","))
    )
    assert [step.kind for step in counted.steps] == [
        "scores",
        "finalists",
        "runoff",
        "winner_scored_less",
        "winner",
    ]
    # The options' names are isolated in the room's text (services/meeting_announcements.py).
    isolated_names = [iso(name) for name in HEADER.strip().split(",")]
    for line in tabulate([[5, 4, 0], [5, 4, 0], [5, 4, 0], [0, 5, 0]], isolated_names).explain(
        "en"
    ):
        assert line in result
    assert f"The winning option is {iso('1. Print only')}." in result
    keys = _keys(rows)
    assert keys.index(f"result:{second.round_id}") < keys.index(
        next(k for k in keys if k.startswith("consensus:"))
    )
    assert f"The decision: {iso('Print only')}" in _states(rows)[-1]


async def test_the_result_says_when_it_is_party_consensus(demo):
    # The Media Working Group leads on media: its Moot on media makes Party Consensus.
    ref = await _at_paper_vote(demo, topic="Media")
    await paper_votes.enter_paper_vote(demo, ANA, ref, (HEADER + "5,0,0\n5,1,0\n4,5,0\n").encode())
    result = _body(await _room(demo, _id(ref)), "result:")
    assert "This is Party Consensus. Media Working Group leads on “media”" in result


async def test_a_things_consensus_is_told_in_its_room_and_each_assemblys(demo):
    await _link_rooms(demo)
    demo.rules = replace(demo.rules, require_preparation=False)
    thing = await meetings.call_thing(demo, ANA, [MEDIA, OWG], "Shall we share a newsletter?")
    await roll_call.open_meeting(demo, ANA, thing.ref)
    for who in dict.fromkeys([*MEDIA_PRESENT, *await voters(demo, 6)]):
        status = await roll_call.record_attendance(demo, who, thing.ref)
    assert status.reached
    await debate.start_debate(demo, ANA, thing.ref)
    await debate.add_option(demo, ANA, thing.ref, "Yes, one newsletter")
    await debate.end_debate(demo, ANA, thing.ref)
    async with demo.transaction() as session:
        told = list(
            await session.scalars(
                select(OutboxMessage.destination)
                .where(OutboxMessage.dedupe_key.startswith("consensus:"))
                .order_by(OutboxMessage.id)
            )
        )
    # The Thing's room first, then each involved assembly's room.
    assert told[0] == f"meeting:{_id(thing.ref)}"
    assert sorted(told[1:]) == ["!media:harmony.uk", "!owg:harmony.uk"]


async def _link_rooms(ctx) -> None:
    async with ctx.transaction() as session:
        for slug, room in ((MEDIA, "!media:harmony.uk"), (OWG, "!owg:harmony.uk")):
            await session.execute(
                update(Assembly).where(Assembly.slug == slug).values(matrix_room_id=room)
            )


# --- The moderating rules -----------------------------------------------------------


async def test_the_partys_own_moderating_rules_are_posted_as_written(demo, tmp_path):
    rules = tmp_path / "rules.txt"
    rules.write_text("\ufeffOur rules:\n1. One voice at a time.\n2. <b>No</b> @room.\n")
    config = load_config(None, {"HARMONY_PARTY__MODERATING_RULES_FILE": str(rules)})
    demo.moderating_rules = config.party.moderating_rules()
    ref = await prepared_moot(demo)
    await roll_call.open_meeting(demo, ANA, ref)
    await debate.start_debate(demo, ANA, ref)
    text = _body(await _room(demo, _id(ref)), "debate:")
    assert text.endswith("Our rules:\n1. One voice at a time.\n2. <b>No</b> @room.")
    assert default_moderating_rules().render("en") not in text


def test_context_reads_the_rules_file_at_start_up(tmp_path):
    rules = tmp_path / "rules.txt"
    rules.write_text("Be brief.")
    config = load_config(None, {"HARMONY_PARTY__MODERATING_RULES_FILE": str(rules)})
    assert ServiceContext.from_config(config).moderating_rules == "Be brief."
    assert ServiceContext.from_config(load_config(None, {})).moderating_rules == ""


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        (b"", "is empty"),
        (b"  \n ", "is empty"),
        (b"\xff\xfe rules", "not UTF-8"),
        (b"x" * 20_001, "too long"),
    ],
)
def test_an_unusable_rules_file_is_a_configuration_error(tmp_path, content, problem):
    path = tmp_path / "rules.txt"
    if content is not None:
        path.write_bytes(content)
    settings = PartySettings(moderating_rules_file=str(path))
    with pytest.raises(InvalidInput) as refused:
        settings.moderating_rules()
    message = str(refused.value)
    assert "party.moderating_rules_file" in message and problem in message


def test_a_folder_is_not_a_rules_file(tmp_path: Path):
    with pytest.raises(InvalidInput, match="cannot read"):
        PartySettings(moderating_rules_file=str(tmp_path)).moderating_rules()


# --- Text members wrote, and other languages -----------------------------------------


async def test_hostile_text_is_shown_as_written(demo):
    called = await meetings.call_moot(demo, ANA, MEDIA, f"{HOSTILE}?")
    demo.rules = replace(demo.rules, require_preparation=False)
    ref = called.ref
    await _open_with_quorum(demo, ref)
    await debate.add_suggestion(demo, CHLOE, ref, HOSTILE)
    await debate.add_suggestion(demo, GWEN, ref, "Line one\n3. Not a real item")
    await debate.start_debate(demo, ANA, ref)
    await debate.add_option(demo, ANA, ref, HOSTILE)
    await debate.add_option(demo, ANA, ref, "x" * 2000)
    await debate.end_debate(demo, ANA, ref)
    rows = await _room(demo, _id(ref))
    states = _states(rows)
    assert f"Question: {iso(HOSTILE + '?')}" in _body(rows, "opened:")
    assert f"1. {iso(HOSTILE)}" in states[-2]  # the suggestions, in the debate
    # A line break in a suggestion cannot pose as another item of the list.
    assert f"2. {iso('Line one 3. Not a real item')}" in states[-2]
    assert f"The options are:\n1. {iso(HOSTILE)}\n2. {iso('x' * 2000)}\n" in _body(rows, "vote:")
    # In the state, a long option is shortened: it must stay one readable message.
    assert f"2. {iso('x' * 299 + '…')}" in states[-1] and "x" * 300 not in states[-1]


async def test_the_room_reads_the_partys_language(demo):
    demo.party = replace(demo.party, default_language="fr")
    demo.rules = replace(demo.rules, require_preparation=False)
    called = await meetings.call_moot(demo, ANA, MEDIA, "Faut-il une lettre ?")
    await roll_call.open_meeting(demo, ANA, called.ref)
    rows = await _room(demo, _id(called.ref))
    assert all(row.language == "fr" for row in rows)
    # Translated messages read in French; new ones fall back to English until translated.
    assert f"Question : {iso('Faut-il une lettre ?')}" in _body(rows, "opened:")
    state = _states(rows)[-1]
    assert "La réunion est en phase de discussion." in state
    assert f"Question : {iso('Faut-il une lettre ?')}" in state


async def test_the_state_in_french(demo):
    ref = await prepared_moot(demo)
    await _open_with_quorum(demo, ref)
    async with demo.transaction() as session:
        meeting = await session.get(Meeting, _id(ref))
        assert meeting is not None
        message: Message = await meeting_state.meeting_state(session, demo, meeting)
    french = message.render("fr")
    assert "La réunion est en phase de discussion." in french
    assert "Le quorum est atteint." in french
    assert f"Où : {iso('Community Hall, 1 High St')}" in french


async def test_nothing_is_shown_before_the_meeting_opens_or_when_cancelled_unopened(demo):
    ref = await prepared_moot(demo, wait_for_start=False)
    await meetings.cancel_meeting(demo, ANA, ref, "No longer needed")
    async with demo.transaction() as session:
        meeting = await session.get(Meeting, _id(ref))
        assert meeting is not None and meeting.phase is Phase.CANCELLED
        assert not await meeting_state.queue_state(session, demo, meeting)
    assert _states(await _room(demo, _id(ref))) == []


async def test_a_cancelled_meeting_shows_it_in_its_state(demo):
    ref = await prepared_moot(demo)
    await _open_with_quorum(demo, ref)
    await meetings.cancel_meeting(demo, ANA, ref, "The hall flooded")
    # meetings.py is not this change's: the lead adds this call to cancel_meeting.
    async with demo.transaction() as session:
        meeting = await session.get(Meeting, _id(ref))
        assert meeting is not None
        await meeting_state.queue_state(session, demo, meeting)
    state = _states(await _room(demo, _id(ref)))[-1]
    assert "The meeting was cancelled." in state and "Quorum" not in state


async def test_a_continuation_date_updates_the_state_and_the_calendar(demo, clock):
    ref = await _at_paper_vote(demo)
    await paper_votes.enter_paper_vote(
        demo, ANA, ref, (HEADER + "5,0,0\n0,5,0\n5,0,0\n0,5,0\n").encode()
    )
    later = demo.now() + timedelta(days=20)
    await preparation.schedule(
        demo, ANA, ref, later, place="Library", accessibility="Step-free", reason="Hall booked"
    )
    assert f"Where: {iso('Library')}" in _states(await _room(demo, _id(ref)))[-1]
    # Everyone is told again, with a calendar file that updates the entry.
    assert await preparation.notify(demo, ANA, ref) > 0
    files = [row for row in await _room(demo, _id(ref)) if row.attachment is not None]
    assert [row.dedupe_key for row in files] == [
        f"notice-ics:{_id(ref)}:1:meeting",
        f"notice-ics:{_id(ref)}:2:meeting",
    ]
    assert b"SEQUENCE:2" in files[-1].attachment and b"Hall booked" in files[-1].attachment


async def test_a_result_is_announced_once(demo):
    ref = await _at_paper_vote(demo)
    view = await paper_votes.enter_paper_vote(
        demo, ANA, ref, (HEADER + "5,0,0\n5,1,0\n4,5,0\n").encode()
    )
    async with demo.transaction() as session:
        round_ = await session.get(BallotRound, view.round_id)
        meeting = await session.get(Meeting, _id(ref))
        assert round_ is not None and meeting is not None
        assert not await announce_result(session, demo, meeting, round_, party_consensus=False)


async def test_answering_the_roll_call_again_does_not_refresh_the_state(demo):
    """Otherwise anyone present could have the pinned state, with the ballot's turnout
    in it, rewritten whenever they like: a way to watch votes come in one by one."""
    present = await voters(demo, 9)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref)
    links = await deliver_links(demo)
    await ballots.cast_ballot(demo, path_of(links[present[0]]), {1: 5, 2: 0, 3: 1})
    meeting_id = int(ref.removeprefix("M-"))
    before = [row.id for row in await _room(demo, meeting_id)]
    for who in present:
        await roll_call.record_attendance(demo, who, ref)
    assert [row.id for row in await _room(demo, meeting_id)] == before
