"""Forty ballot links by direct message through a real Synapse, with the sender killed
half-way (SIGKILL) and restarted: every voter ends with exactly one working link, which
votes once. A voter who got a second message (the sender died between sending and
recording) finds that only the latest link works, and the first one's refusal says so."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from harmony_matrix.bot.sender import OutboxSender
from harmony_matrix.constitution.process import PreparationStep
from harmony_matrix.errors import HarmonyError
from harmony_matrix.services import (
    ballot_delivery,
    ballots,
    debate,
    delivery,
    meetings,
    preparation,
    roll_call,
)
from harmony_matrix.storage.models import OutboxMessage
from tests.ballots.helpers import path_of
from tests.matrix.member import bodies_in
from tests.matrix.party import members_of_working_group
from tests.matrix.sender_process import bot_client
from tests.matrix.test_sender import write_session
from tests.services.helpers import to_start

ROOT = Path(__file__).resolve().parents[2]
VOTERS = 40

pytestmark = pytest.mark.database_matters


async def ballot_count(ctx, *, sent: bool) -> int:
    async with ctx.transaction() as session:
        query = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.voting_right_id.is_not(None))
        )
        query = query.where(
            OutboxMessage.sent_at.is_not(None) if sent else OutboxMessage.sent_at.is_(None)
        )
        return await session.scalar(query) or 0


async def meeting_at_vote(ctx, voters: list[str]) -> str:
    """A Moot of the working group run through the services (by the operator) up to an
    open ballot, with every voter present."""
    called = await meetings.call_moot(ctx, None, "working-group", "Where shall we meet?")
    ref = called.ref
    for step, note in ((PreparationStep.FACTS, "Costs"), (PreparationStep.MATERIALS, "Map")):
        await preparation.record_preparation(ctx, None, ref, step, note)
    await preparation.schedule(
        ctx, None, ref, ctx.now() + timedelta(days=7), place="Hall", accessibility="Step-free"
    )
    await preparation.notify(ctx, None, ref)
    await to_start(ctx, ref)
    await roll_call.open_meeting(ctx, None, ref)
    for voter in voters:
        await roll_call.record_attendance(ctx, voter, ref)
    await debate.start_debate(ctx, None, ref)
    for option in ("The library", "The town hall"):
        await debate.add_option(ctx, None, ref, option)
    await debate.end_debate(ctx, None, ref)
    await ballots.open_ballot(ctx, None, ref)
    return ref


def start_sender(session_file: Path, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.matrix.sender_process", str(session_file), database_url],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HARMONY_TEST_SECRET_KEY": "test-secret-key-not-for-production",
        },
    )


class Died(BaseException):
    """The sender's process dying: nothing after this point runs."""


async def sent_but_not_recorded(ctx, tmp_path, bot_user, monkeypatch, matrix_id: str) -> None:
    """Deliver one voter's ballot message and die before recording it: the window in
    which a SIGKILL leaves a member with a link the database never confirmed. (A real
    SIGKILL lands in it only by chance; this puts the sender there every time.)"""
    async with ctx.transaction() as session:
        outbox_id = await session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.voting_right_id.is_not(None), OutboxMessage.destination == matrix_id
            )
        )
    client = await bot_client(json.loads(write_session(tmp_path, bot_user).read_text()))
    try:

        async def die(*_args: object) -> bool:
            raise Died

        monkeypatch.setattr(ballot_delivery, "confirm_ballot_message", die)
        pending = await delivery.pending(ctx, outbox_id)
        assert pending is not None
        with pytest.raises(Died):
            await OutboxSender(client, ctx).send(pending)
    finally:
        monkeypatch.undo()
        await client.close()


async def test_forty_ballot_links_across_sigkill_each_voter_one_working_link(
    ctx, database_url, tmp_path, register_user, member_client, monkeypatch
):
    bot_user = await register_user("bot", admin=True)
    users = [await register_user(f"voter{i}") for i in range(VOTERS)]
    # Logged in before anything is sent: an encrypted message can be read only by the
    # devices that existed when it was sent.
    members = [await member_client(user) for user in users]
    await members_of_working_group(ctx, users)
    voters = [user.user_id for user in users]
    ref = await meeting_at_vote(ctx, voters)
    async with ctx.transaction() as session:
        # Only the ballot messages are under test here: the invitations queued on the way
        # would be sent first and only slow the test down.
        await session.execute(delete(OutboxMessage).where(OutboxMessage.voting_right_id.is_(None)))
    assert await ballot_count(ctx, sent=False) == VOTERS

    await sent_but_not_recorded(ctx, tmp_path, bot_user, monkeypatch, voters[0])
    assert await ballot_count(ctx, sent=True) == 0

    session_file = write_session(tmp_path, bot_user)
    log = tmp_path / "sender.log"
    killed = start_sender(session_file, database_url, log)
    try:
        while await ballot_count(ctx, sent=True) < VOTERS // 2:
            assert killed.poll() is None, log.read_text()
            await asyncio.sleep(0.02)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    assert await ballot_count(ctx, sent=True) < VOTERS, "killed too late to test anything"

    finishing = start_sender(session_file, database_url, log)
    assert await asyncio.to_thread(finishing.wait, 300) == 0, log.read_text()
    assert await ballot_count(ctx, sent=True) == VOTERS

    seconds = 0
    for user, member in zip(users, members, strict=True):
        room_id = await delivery.direct_room(ctx, user.user_id)
        assert room_id is not None
        await member.wait_for_invite(room_id, within=30)
        await member.join(room_id)
        links = [
            word
            for body in await bodies_in(member, room_id)
            for word in body.split()
            if "/vote/" in word
        ]
        assert 1 <= len(links) <= 2, links
        *earlier, latest = links
        for old in earlier:
            seconds += 1
            with pytest.raises(HarmonyError) as refused:
                await ballots.cast_ballot(ctx, path_of(old), {1: 5, 2: 0})
            assert "latest message" in refused.value.message.render("en")
        assert await ballots.cast_ballot(ctx, path_of(latest), {1: 5, 2: 1})
        with pytest.raises(HarmonyError) as again:
            await ballots.cast_ballot(ctx, path_of(latest), {1: 0, 2: 5})
        assert "already been used" in again.value.message.render("en")
    status = await ballots.round_status(ctx, ref)
    assert status.cast == status.eligible == VOTERS
    assert seconds >= 1  # the first voter's, at least; a SIGKILL may have made more
    print(f"voters with a second ballot message: {seconds}")
