"""Petitions, primary remit and paper ballots in the chat, through the dispatcher on a
real database: what the commands answer, what they change, and how they refuse misuse."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from harmony_matrix.errors import RuleViolation
from harmony_matrix.i18n import isolated as iso
from harmony_matrix.services import assembly_rooms, ballots, paper_sign_in, remits
from harmony_matrix.storage.models import BallotRound, OutboxMessage, Person, Petition
from tests.ballots.helpers import meeting_at_vote, voters
from tests.services.helpers import (
    ANA,
    CHLOE,
    ELIF,
    GWEN,
    IRIS,
    JON,
    OWG,
    prepared_moot,
    row_counts,
    signing_members,
)
from tests.services.paper_helpers import deliver_sign_in_links

from .conftest import MEDIA_ROOM, OTHER_ROOM, Chat, html, plain

STRANGER = "@stranger:elsewhere.org"
OWG_ROOM = "!owg-room:harmony.uk"


@pytest.fixture
async def english(chat: Chat) -> Chat:
    """Everyone reads English: the new messages are asserted before they are translated."""
    async with chat.ctx.transaction() as session:
        await session.execute(update(Person).values(language="en"))
    return chat


async def _petition_room(ctx, ref: str) -> str | None:
    async with ctx.transaction() as session:
        return await session.scalar(
            select(Petition.matrix_room_id).where(Petition.id == int(ref.removeprefix("P-")))
        )


# !petition start, sign, status


async def test_a_petition_started_signed_and_reached_in_the_chat(english):
    chat = english
    start = await chat.ask(ANA, "!petition start Adopt a <b>new</b> logo @room")
    text = plain(start)
    assert text.splitlines() == [
        f"Petition P-1 is open: “{iso('Adopt a <b>new</b> logo @room')}”. You are its first "
        "signature.",
        "1 of 5 signatures. The threshold is 15% of the 29 Members who were not suspended "
        "when the petition opened.",
        "Still needed: 4. Members sign it with: !petition sign P-1",
    ]
    # A member's text stays text: escaped in HTML, and the reply pings only its sender.
    assert "&lt;b&gt;new&lt;/b&gt;" in html(start)
    assert not start.rooms_changed
    assert await _petition_room(chat.ctx, "P-1") == MEDIA_ROOM

    signers = await signing_members(chat.ctx, leaving_out=(ANA,))
    for signer in signers[:3]:
        reply = await chat.ask(signer, "!petition sign")  # the one open petition
        assert "You signed petition P-1" in plain(reply) and not reply.rooms_changed
    status = await chat.text(STRANGER, "!petition status", room=OTHER_ROOM)
    assert status.splitlines()[0] == f"P-1: {iso('Adopt a <b>new</b> logo @room')}"
    assert "4 of 5 signatures" in status and "Still needed: 1." in status

    last = await chat.ask(signers[3], "!petition sign P-1", room=OTHER_ROOM)
    text = plain(last)
    assert "5 of 5 signatures" in text
    assert (
        "It has reached its threshold and called Party Thing M-1, which must be held by "
        "23 November 2026." in text
    )
    # The bot creates the Party Thing's room at once.
    assert last.rooms_changed
    async with chat.ctx.transaction() as session:
        to_room = list(
            await session.scalars(
                select(OutboxMessage.body).where(OutboxMessage.destination == MEDIA_ROOM)
            )
        )
    assert len(to_room) == 1 and "called Party Thing M-1" in to_room[0]
    after = await chat.text(GWEN, "!petition status P-1")
    assert "called Party Thing M-1, which must be held by 23 November 2026" in after
    late = await chat.text(signers[5], "!petition sign P-1")
    assert (
        late
        == "Petition P-1 has reached its threshold and called Party Thing M-1, so it is closed."
    )


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        (ELIF, "Only Members can start or sign a petition for a Party Thing, not Participants."),
        (IRIS, "you are suspended until 31 January 2027, so you cannot do this"),
        (JON, "you are suspended until further notice, so you cannot do this"),
        (STRANGER, "You are not on the party's register yet"),
    ],
)
async def test_only_members_who_are_not_suspended_start_or_sign(english, who, reason):
    chat = english
    await chat.ask(ANA, "!petition start A logo")
    before = await row_counts(chat.ctx)
    assert reason in await chat.text(who, "!petition sign P-1")
    assert reason in await chat.text(who, "!petition start My own")
    assert await row_counts(chat.ctx) == before


async def test_an_omitted_id_means_the_one_open_petition(english):
    chat = english
    assert await chat.text(ANA, "!petition status") == (
        "No petition is open now: give the petition's ID, like P-3.\nUsage: !petition status [ID]"
    )
    await chat.ask(ANA, "!petition start First")
    await chat.ask(GWEN, "!petition start Second")
    several = await chat.text(ANA, "!petition sign")
    assert several == (
        "Several petitions are open (P-1 and P-2): give the ID of the one you mean.\n"
        "Usage: !petition sign [ID]"
    )
    assert f"You signed petition P-2: “{iso('Second')}”." in await chat.text(
        ANA, "!petition sign P-2"
    )


async def test_petition_misuse(english):
    chat = english
    assert await chat.text(ANA, "!petition start") == (
        "TITLE is missing.\nUsage:\n"
        "- !petition start TITLE\n- !petition sign [ID]\n- !petition status [ID]"
    )
    assert await chat.text(ANA, "!petition status P-9") == (
        "There is no petition P-9.\nUsage: !petition status [ID]"
    )
    banana = await chat.text(ANA, "!petition sign banana")
    assert banana.endswith("Usage: !petition sign [ID]")
    twice = await chat.text(ANA, "!petition start Mine")
    assert "Petition P-1 is open" in twice
    assert await chat.text(ANA, "!petition sign P-1") == "You have already signed petition P-1."
    help_text = await chat.text(ANA, "!help petition sign")
    assert help_text.splitlines()[0] == "!petition sign [ID]"
    assert "Who may use it: a Member of the party (not a Participant)" in help_text


# !remit decline


async def test_the_leading_assemblys_secretary_declines_the_lead(english):
    chat = english
    refused = await chat.text(GWEN, "!remit decline disability")
    assert refused == (
        "Only a secretary of Disability Activism Society, or the General Secretary, can do this."
    )
    text = await chat.text(CHLOE, '!remit decline Disability --reason "We are too few"')
    assert text.splitlines() == [
        "Disability Activism Society no longer leads on “disability”.",
        "Policy Society for Disability leads on it now: its Moots on it make Party "
        "Consensus. Its secretaries are told.",
    ]
    assert await remits.lead_for_topic(chat.ctx, "disability") == "policy-society-for-disability"
    unknown = await chat.text(CHLOE, "!remit decline gardening")
    assert unknown == "No assembly leads on “gardening”, so there is no lead to decline."
    assert await chat.text(CHLOE, "!remit decline") == (
        "TOPIC is missing.\nUsage: !remit decline TOPIC [--reason TEXT]"
    )


async def test_a_lead_without_a_fallback_leaves_no_lead(english):
    text = await english.text(ANA, "!remit decline constitution")
    assert text.splitlines() == [
        "Operational Working Group no longer leads on “constitution”.",
        "No assembly leads on it now, so no Moot on it makes Party Consensus until one does.",
    ]


# !ballot paper


async def test_ballot_paper_holds_the_vote_on_paper_and_says_how_to_enter_it(english):
    chat = english
    ref = await meeting_at_vote(chat.ctx, await voters(chat.ctx, 6))
    await assembly_rooms.link_room(chat.ctx, None, OWG, OWG_ROOM)
    refused = await chat.text(GWEN, "!ballot paper", room=OWG_ROOM)
    assert refused == (
        "Only a secretary of Operational Working Group, or the General Secretary, can do this."
    )
    reply = await chat.ask(ANA, "!ballot paper", room=OWG_ROOM)  # the room's meeting
    assert plain(reply).splitlines() == [
        f"The vote of {ref} is held on paper. No online ballot can be opened for it.",
        "Give one paper ballot to each person present who may vote: 6 people now, so at "
        "most 6 ballots.",
        "On the paper, each person gives every option a score from 0 (worst) to 5 (best):",
        "- 1. Meet monthly",
        "- 2. Meet every two months",
        "- 3. Meet yearly",
        "Then type the ballots in on a web page. Check your direct messages: I am sending "
        "you a link that signs you in to it. It works once, for two hours.",
        "Or type the ballots into a CSV file. Row 1 names the options, in this order; "
        "then one row of scores for each paper: "
        "1. Meet monthly,2. Meet every two months,3. Meet yearly",
        "Whoever runs Harmony's server enters the file with this command, which counts the "
        "ballots and records the outcome: "
        f"harmony ballots enter {ref} FILE.csv",
    ]
    # The link goes to the secretary alone, by direct message, minted when it is sent.
    async with chat.ctx.transaction() as session:
        [dm] = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.paper_sign_in_id.is_not(None))
            )
        )
        room_texts = list(
            await session.scalars(
                select(OutboxMessage.body).where(OutboxMessage.is_direct.is_(False))
            )
        )
    assert dm.destination == ANA and dm.is_direct and "/paper/" not in dm.body
    assert not any("/paper/" in text for text in room_texts)
    [link] = (await deliver_sign_in_links(chat.ctx)).values()
    assert (await paper_sign_in.check_sign_in(chat.ctx, link)).meeting_ref == ref
    with pytest.raises(RuleViolation):
        await ballots.open_ballot(chat.ctx, ANA, ref)
    async with chat.ctx.transaction() as session:
        [round_] = list(await session.scalars(select(BallotRound)))
    assert round_.on_paper and round_.result is None


async def test_ballot_paper_withdraws_an_unused_online_ballot(english):
    chat = english
    ref = await meeting_at_vote(chat.ctx, await voters(chat.ctx, 6))
    await ballots.open_ballot(chat.ctx, ANA, ref)
    text = await chat.text(ANA, f"!ballot paper {ref}", room=OTHER_ROOM)
    assert (
        "The online ballot was withdrawn before anyone voted: 6 voting links no longer "
        "work, and whoever was sent one is told." in text
    )


async def test_ballot_paper_misuse(english):
    chat = english
    assert await chat.text(ANA, "!ballot paper", room=OTHER_ROOM) == (
        "No meeting is under way in this room: give the meeting's ID, like M-12.\n"
        "Usage: !ballot paper [ID]"
    )
    assert await chat.text(ANA, "!ballot paper M-99") == (
        "There is no meeting M-99.\nUsage: !ballot paper [ID]"
    )
    ref = await prepared_moot(chat.ctx, slug=OWG)
    assert await chat.text(ANA, f"!ballot paper {ref}") == (
        "A vote is held on paper when the debate has ended with two or more options."
    )
    assert "you are suspended" in await chat.text(IRIS, f"!ballot paper {ref}")
