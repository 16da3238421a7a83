"""Two ``harmony bot`` processes on one database and one store, through a real Synapse:
exactly one acts; SIGKILL it and the other takes over within 10 s and answers; no command
is answered twice. The SQLite pass tests the lock file, the PostgreSQL pass the advisory
lock (bot/leadership.py)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import pytest
from nio import MegolmEvent, MessageDirection, RoomMessagesResponse

from tests.conftest import POSTGRES_URL
from tests.matrix.bot_process import bot_settings, start_bot, write_config
from tests.matrix.bot_runner import reply_to, room_of
from tests.matrix.member import Member
from tests.matrix.party import members_of_working_group

ACTIVE = "and is the active one"
WAITING = "Another bot holds the"


async def text_of(log: Path) -> str:
    return await asyncio.to_thread(log.read_text, encoding="utf-8")


async def wait_for_line(
    logs: list[Path], processes: list[subprocess.Popen[bytes]], line: str, within: float
) -> int:
    """The index of the first log that shows ``line``; fails if a bot exits meanwhile."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        for index, log in enumerate(logs):
            if line in await text_of(log):
                return index
        for process, log in zip(processes, logs, strict=True):
            assert process.poll() is None, f"a bot exited:\n{await text_of(log)}"
        assert asyncio.get_running_loop().time() < deadline, "\n---\n".join(
            [await text_of(log) for log in logs]
        )
        await asyncio.sleep(0.05)


async def replies_in_history(member: Member, room_id: str, event_id: str) -> int:
    """How many replies to the event the room's whole history holds."""
    await member.sync()
    count, start = 0, None
    while True:
        response = await member.client.room_messages(
            room_id, start=start, direction=MessageDirection.back, limit=100
        )
        assert isinstance(response, RoomMessagesResponse), response
        for event in response.chunk:
            assert not isinstance(event, MegolmEvent), f"undecryptable: {event.event_id}"
            relates = event.source.get("content", {}).get("m.relates_to", {})
            count += relates.get("m.in_reply_to", {}).get("event_id") == event_id
        if not response.chunk or not response.end or response.end == start:
            return count
        start = response.end


@pytest.mark.database_matters
async def test_one_bot_acts_and_the_other_takes_over_within_10_s_of_a_sigkill(
    process_ctx, tmp_path, register_user, member_client
):
    ctx, database_url = process_ctx
    bot_user = await register_user("harmony", admin=True)
    ann_user = await register_user("ann")
    ann = await member_client(ann_user)
    await members_of_working_group(ctx, [ann_user])
    # One config for both, as two replicas of one deployment: the same store too (the
    # waiting bot does not open it until it leads).
    config = write_config(
        tmp_path / "bot.toml",
        database_url=database_url,
        matrix=bot_settings(bot_user, tmp_path / "store"),
    )
    logs = [tmp_path / "bot-a.log", tmp_path / "bot-b.log"]
    bots = [start_bot(config, log) for log in logs]
    try:
        active = await wait_for_line(logs, bots, ACTIVE, within=30)
        other = 1 - active
        await wait_for_line([logs[other]], [bots[other]], WAITING, within=30)
        lock = "database's bot lock" if POSTGRES_URL else ".bot-lock"
        assert lock in await text_of(logs[active])

        room_id = await room_of(ctx, "working-group", within=60)
        await ann.wait_for_invite(room_id, within=60)
        await ann.join(room_id)
        first = await ann.send_text(room_id, "!whoami")
        answer = await reply_to(ann, room_id, first, within=60)
        assert ann_user.user_id in answer.body
        assert ACTIVE not in await text_of(logs[other])

        bots[active].send_signal(signal.SIGKILL)
        await asyncio.to_thread(bots[active].wait)
        began = asyncio.get_running_loop().time()
        await wait_for_line([logs[other]], [bots[other]], ACTIVE, within=10)
        assert asyncio.get_running_loop().time() - began < 10

        second = await ann.send_text(room_id, "!whoami")
        answer = await reply_to(ann, room_id, second, within=60)
        assert ann_user.user_id in answer.body

        bots[other].send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(bots[other].wait, 60) == 0, await text_of(logs[other])
    finally:
        for bot in bots:
            if bot.poll() is None:
                bot.kill()
                await asyncio.to_thread(bot.wait)

    assert await replies_in_history(ann, room_id, first) == 1
    assert await replies_in_history(ann, room_id, second) == 1
    for log in logs:
        assert "Traceback" not in await text_of(log)
