"""A whole Assembly Moot run in the chat through a real homeserver, from ``!moot call``
to the record of consensus: a secretary types the commands, five members answer the roll
call, make suggestions and vote through the link in their direct message, and the room
sees the result explained. Once on one homeserver with unencrypted rooms, once in
encrypted rooms with a member on a second homeserver. Then a vote with no clear winner
that goes back to debate and decides in its second round, and hostile text that stays
text."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from nio import RoomGetStateEventResponse, RoomMessageNotice, RoomMessageText
from sqlalchemy import select

from harmony_matrix.i18n import verbatim
from harmony_matrix.services import ballots, consensus, records
from harmony_matrix.services.lookup import meeting_ref, person_by_matrix_id
from harmony_matrix.storage.models import ConsensusRecord, OutboxMessage
from tests.matrix.bot_runner import bot_config, room_of, running
from tests.matrix.meeting_script import (
    announcement,
    ballot_link,
    in_history,
    join_direct_room,
    latest_meeting,
    local_time,
    say,
)
from tests.matrix.member import Member
from tests.matrix.party import Party, local_party, members_of_working_group

QUESTION = "Should we move our IT to a new host?"
CO_OP = "Move to the co-operative host"
STAY = "Stay and upgrade what we have"


async def everyone_sent(ctx, within: float = 90.0) -> None:
    """Wait until the outbox is empty: everything queued so far has been delivered."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with ctx.transaction() as session:
            waiting = await session.scalar(
                select(OutboxMessage.id)
                .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
                .limit(1)
            )
        if waiting is None:
            return
        assert asyncio.get_running_loop().time() < deadline, "the outbox did not empty"
        await asyncio.sleep(0.2)


class Meeting:
    """Five people in the working group's room: the secretary and four members (Ben is a
    Participant, who may take part in his assembly's Moot)."""

    def __init__(self, ctx, party: Party, people: list[Member], room_id: str) -> None:
        self.ctx = ctx
        self.party = party
        self.secretary, *self.members = people
        self.people = people
        self.room_id = room_id
        self.seen_ballots: dict[str, set[str]] = {p.user_id: set() for p in people}

    async def secretary_says(self, text: str) -> str:
        return await say(self.secretary, self.room_id, text)

    async def to_the_vote(self, question: str = QUESTION, options=(CO_OP, STAY)) -> str:
        called = await self.secretary_says(f"!moot call {question}")
        ref = meeting_ref((await latest_meeting(self.ctx)).id)
        assert ref in called
        assert ref in await self.secretary_says("!prepare facts Quotes from three hosts")
        assert ref in await self.secretary_says("!prepare materials A table of costs")
        day, hour = local_time(self.ctx.now() + timedelta(days=7))
        scheduled = await self.secretary_says(
            f'!schedule {day} {hour} --place "Community Hall, 1 High St" '
            '--online https://meet.example/it --access "Step-free, captions, hearing loop"'
        )
        assert f"{ref} is set for" in scheduled
        assert "people are being told" in await self.secretary_says("!notify")
        # Every eligible member gets the notice and its calendar file by direct message.
        for member in self.people:
            dm = await join_direct_room(self.ctx, member)
            notice = await in_history(
                member, dm, lambda e: "You are invited" in getattr(e, "body", "")
            )
            assert question in notice.source["content"]["body"]
            ics = await in_history(member, dm, lambda e: getattr(e, "body", None) == f"{ref}.ics")
            assert ics.source["content"]["msgtype"] == "m.file"
        self.ctx.clock.current = (await latest_meeting(self.ctx)).starts_at
        opened = await self.secretary_says("!start")
        assert f"{ref} is open" in opened
        for person in self.people:
            answer = await say(person, self.room_id, "!here")
            assert "on the roll call" in answer
        quorum = await say(self.members[0], self.room_id, "!quorum")
        assert "5 people present" in quorum and "Quorum is reached." in quorum
        assert "written down" in await say(self.members[0], self.room_id, f"!suggest {CO_OP}")
        assert "written down" in await say(self.members[1], self.room_id, f"!suggest {STAY}")
        assert ref in await self.secretary_says("!debate")
        await announcement(self.members[2], self.room_id, "Be kind")  # the moderating rules
        for option in options:
            assert "Option" in await self.secretary_says(f"!option add {option}")
        assert "secret vote" in await self.secretary_says("!vote")
        return ref

    async def ballot(self, ref: str, scores: list[dict[int, int]]) -> None:
        """Open the ballot, everyone votes through their DM's link, close it."""
        opened = await self.secretary_says("!ballot open --closes 2h")
        assert "is open until" in opened
        await announcement(self.members[0], self.room_id, "How to vote")
        for person, given in zip(self.people, scores, strict=True):
            link = await ballot_link(self.ctx, person, self.seen_ballots[person.user_id])
            assert await ballots.cast_ballot(self.ctx, link, given)
        status = await say(self.members[3], self.room_id, "!ballot status")
        assert "5 of 5 people have voted" in status
        closed = await self.secretary_says("!ballot close")
        assert "closed and counted" in closed


async def start_party(ctx, register, member_client, *, far_server=None) -> tuple[Party, list]:
    party = await local_party(ctx, register)
    extra_near = await register("dee")
    extra_far = await register("eve", server=far_server) if far_server else await register("eve")
    await members_of_working_group(ctx, [extra_near, extra_far], with_assemblies=False)
    users = [party.secretary, party.ann, party.ben, extra_near, extra_far]
    # Logged in before anything is sent to them: an encrypted message can be read only by
    # the devices that existed when it was sent.
    people = [await member_client(user) for user in users]
    return party, people


async def join_room(ctx, people: list[Member]) -> str:
    """Everyone joins the working group's room, and opens their direct room with the bot
    (as a member who has heard from it before has): a member on another homeserver who
    joins a room only after a message was sent may never see it (their server does not
    backfill what came before the join), and an encrypted message is readable only by
    the devices in the room when it was sent."""
    room_id = await room_of(ctx, "working-group")
    for person in people:
        await person.wait_for_invite(room_id, within=60)
        await person.join(room_id, within=30)
    async with ctx.transaction() as session:
        for person in people:
            await records.direct_message(
                session,
                ctx.now(),
                await person_by_matrix_id(session, person.user_id),
                message=verbatim("Hello from Harmony."),
                dedupe_key=f"hello:{person.user_id}",
            )
    for person in people:
        await join_direct_room(ctx, person)
    await everyone_sent(ctx)
    return room_id


async def whole_moot(ctx, party: Party, people: list[Member], room_id: str) -> None:
    meeting = Meeting(ctx, party, people, room_id)
    ref = await meeting.to_the_vote()
    await meeting.ballot(
        ref,
        [{1: 5, 2: 1}, {1: 4, 2: 2}, {1: 5, 2: 0}, {1: 1, 2: 5}, {1: 3, 2: 3}],
    )
    result = await announcement(people[1], room_id, "closed and counted", within=60)
    assert "The winning option is" in result.body and CO_OP in result.body
    assert "step by step" in result.body
    assert f"/meetings/{ref}/ballots.csv" in result.body
    recorded = await announcement(people[2], room_id, "Consensus recorded", within=60)
    assert CO_OP in recorded.body
    [entry] = await consensus.list_consensus(ctx)
    assert (entry.meeting_ref, entry.outcome) == (ref, CO_OP)
    # The meeting's state is one pinned message, edited as the meeting went on.
    pinned = await people[0].client.room_get_state_event(room_id, "m.room.pinned_events")
    assert isinstance(pinned, RoomGetStateEventResponse), pinned
    assert len(pinned.content["pinned"]) == 1
    await everyone_sent(ctx)


async def test_a_whole_moot_in_the_chat(ctx, register_user, member_client, tmp_path):
    party, people = await start_party(ctx, register_user, member_client)
    config = bot_config(party.bot, tmp_path / "store", encrypt_rooms=False)
    async with running(config, ctx):
        room_id = await join_room(ctx, people)
        assert not people[0].client.rooms[room_id].encrypted
        await whole_moot(ctx, party, people, room_id)


async def test_a_whole_moot_encrypted_with_a_member_on_another_homeserver(
    ctx, federated_synapses, register_user, member_client, tmp_path
):
    hs1, hs2 = federated_synapses

    async def register(name: str, server=None, **kwargs):
        return await register_user(name, server=server or hs1, **kwargs)

    party, people = await start_party(ctx, register, member_client, far_server=hs2)
    assert people[-1].user_id.endswith(f":{hs2.server_name}")
    async with running(bot_config(party.bot, tmp_path / "store"), ctx):
        room_id = await join_room(ctx, people)
        assert people[-1].client.rooms[room_id].encrypted
        await whole_moot(ctx, party, people, room_id)


async def test_no_clear_winner_goes_back_to_debate_and_the_second_round_decides(
    ctx, register_user, member_client, tmp_path
):
    party, people = await start_party(ctx, register_user, member_client)
    config = bot_config(party.bot, tmp_path / "store", encrypt_rooms=False)
    async with running(config, ctx):
        room_id = await join_room(ctx, people)
        meeting = Meeting(ctx, party, people, room_id)
        ref = await meeting.to_the_vote()
        # Equal totals, equal preference, equal five-star ratings: only a lot could
        # decide, and Harmony never draws lots.
        await meeting.ballot(
            ref, [{1: 5, 2: 0}, {1: 0, 2: 5}, {1: 3, 2: 3}, {1: 2, 2: 2}, {1: 1, 2: 1}]
        )
        back = await announcement(people[0], room_id, "no clear winner", within=60)
        assert "debate" in back.body
        assert (await latest_meeting(ctx)).phase == "debate"
        assert "secret vote" in await meeting.secretary_says("!vote")
        await meeting.ballot(
            ref, [{1: 5, 2: 0}, {1: 5, 2: 1}, {1: 4, 2: 3}, {1: 0, 2: 5}, {1: 3, 2: 3}]
        )
        async with ctx.transaction() as session:
            record = await session.scalar(select(ConsensusRecord))
        assert record is not None and record.outcome == CO_OP
        second = await ballots.round_status(ctx, ref)
        assert second.number == 2


HOSTILE = '<b>bold</b> <a href="https://evil.example">x</a> @room **markdown** \u202eevil'


async def test_hostile_text_is_shown_as_text(ctx, register_user, member_client, tmp_path):
    party, people = await start_party(ctx, register_user, member_client)
    config = bot_config(party.bot, tmp_path / "store", encrypt_rooms=False)
    async with running(config, ctx):
        room_id = await join_room(ctx, people)
        meeting = Meeting(ctx, party, people, room_id)
        await meeting.to_the_vote(question=f"Q {HOSTILE}", options=(f"A {HOSTILE}", "B"))
        too_long = await say(people[1], room_id, "!suggest " + "x" * 10_000)
        assert "too long" in too_long and len(too_long) < 500
        await everyone_sent(ctx)
        bot_messages = [
            event
            for room, event in people[1].events
            if room == room_id
            and isinstance(event, RoomMessageText | RoomMessageNotice)
            and event.sender == party.bot.user_id
        ]
        assert any(HOSTILE in event.body for event in bot_messages)
        for event in bot_messages:
            content = event.source["content"]
            mentions = content.get("m.mentions", {})
            assert not mentions.get("room"), event.body  # @room pings nobody
            assert set(mentions.get("user_ids", [])) <= {p.user_id for p in people}
            formatted = content.get("formatted_body")
            if formatted is not None:
                assert "<b>bold" not in formatted and "<a href" not in formatted
