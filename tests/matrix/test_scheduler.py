"""The scheduler through a real Synapse: a ballot's reminder reaches a voter by direct
message, and a round whose closing time passed while the bot was down is closed when it
comes back, its closing announced in the meeting's room once."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from sqlalchemy import func, select

from harmony_matrix.constitution.process import PreparationStep
from harmony_matrix.services import ballots, debate, delivery, meetings, preparation, roll_call
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import AuditEvent, BallotRoundStatus
from tests.matrix.bot_runner import bot_config, room_of, running
from tests.matrix.member import Member, bodies_in
from tests.matrix.party import Party, local_party, members_of_working_group
from tests.services.helpers import to_start

CLOSED = "closed at its closing time"
REMINDER = "If you have voted already, thank you"


class RunningClock:
    """The rules' clock, running at the real pace from a chosen moment; a test may jump
    it forward (the hours a bot stays down, without waiting for them)."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.started = time.monotonic()
        self.skipped = timedelta(0)

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.started) + self.skipped

    def jump(self, delta: timedelta) -> None:
        self.skipped += delta


async def meeting_at_vote(ctx: ServiceContext, party: Party, others: list[str]) -> str:
    secretary = party.secretary.user_id
    called = await meetings.call_moot(ctx, secretary, "working-group", "Shall we meet weekly?")
    for step, note in ((PreparationStep.FACTS, "Notes"), (PreparationStep.MATERIALS, "Slides")):
        await preparation.record_preparation(ctx, secretary, called.ref, step, note)
    await preparation.schedule(
        ctx,
        secretary,
        called.ref,
        ctx.now() + timedelta(days=3),
        place="The test room",
        accessibility="Step-free entrance",
    )
    await preparation.notify(ctx, secretary, called.ref)
    await to_start(ctx, called.ref)
    await roll_call.open_meeting(ctx, secretary, called.ref)
    for who in (secretary, party.ann.user_id, *others):
        await roll_call.record_attendance(ctx, who, called.ref)
    await debate.start_debate(ctx, secretary, called.ref)
    for option in ("Weekly", "Monthly"):
        await debate.add_option(ctx, secretary, called.ref, option)
    await debate.end_debate(ctx, secretary, called.ref)
    return called.ref


async def joined_direct_room(ctx: ServiceContext, member: Member, within: float = 30.0) -> str:
    deadline = asyncio.get_running_loop().time() + within
    while (room_id := await delivery.direct_room(ctx, member.user_id)) is None:
        assert asyncio.get_running_loop().time() < deadline, "no direct room"
        await asyncio.sleep(0.2)
    await member.wait_for_invite(room_id, within=within)
    await member.join(room_id)
    return room_id


async def test_a_round_is_closed_by_the_scheduler_across_a_restart(
    ctx, register_user, member_client, tmp_path
):
    party = await local_party(ctx, register_user)
    others = [await register_user("voter"), await register_user("voter")]
    await members_of_working_group(ctx, others, with_assemblies=False)
    ref = await meeting_at_vote(ctx, party, [user.user_id for user in others])
    clock = RunningClock(ctx.now())
    ctx.clock = clock
    config = bot_config(party.bot, tmp_path / "store")

    async with running(config, ctx) as bot:
        room_id = await room_of(ctx, "working-group")
        ann = await member_client(party.ann)
        await ann.wait_for_invite(room_id, within=30)
        await ann.join(room_id)

        # A ballot that closes in 2 hours; an hour later its reminder goes to every voter.
        closes_at = ctx.now() + timedelta(hours=2)
        await ballots.open_ballot(ctx, party.secretary.user_id, ref, closes_at=closes_at)
        bot.sender.wake()
        clock.jump(timedelta(minutes=61))
        bot.scheduler.wake()  # as after any command
        dm_id = await joined_direct_room(ctx, ann)
        reminder = await ann.wait_for_text(dm_id, REMINDER, within=30)
        assert "closes in less than an hour" in reminder.body
        await ann.wait_for_text(dm_id, "/vote/", within=30)  # her ballot, unaffected

    # The bot is down when the ballot's time comes.
    assert (await ballots.round_status(ctx, ref)).status is BallotRoundStatus.OPEN
    clock.jump(timedelta(minutes=60))

    async with running(config, ctx):
        announced = await ann.wait_for_text(room_id, CLOSED, within=30)
        assert ref in announced.body
    status = await ballots.round_status(ctx, ref)
    assert status.status is BallotRoundStatus.CLOSED and status.result is not None

    async with running(config, ctx):  # and once more: nothing is closed or said twice
        await asyncio.sleep(2)
    assert [body for body in await bodies_in(ann, room_id) if CLOSED in body] == [announced.body]
    assert [body for body in await bodies_in(ann, dm_id) if REMINDER in body] == [reminder.body]
    async with ctx.transaction() as session:
        closes = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "ballot.close")
        )
    assert closes == 1
