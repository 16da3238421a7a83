"""The bot's health port with the real bot and the real Synapse: the active bot is
healthy and ready and counts the commands it answers; a second bot on the same
database stands by (healthy, not ready) and becomes ready when it takes over."""

from __future__ import annotations

import asyncio
import re

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from harmony_matrix.bot.app import Bot
from harmony_matrix.homeserver import free_port
from tests.matrix.bot_runner import bot_config, reply_to, room_of, running
from tests.matrix.party import local_party


async def fetch(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def answers(port: int, within: float = 30.0) -> None:
    """Wait until the port answers at all."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            await fetch(port, "/healthz")
            return
        except aiohttp.ClientConnectionError:
            assert asyncio.get_running_loop().time() < deadline, "the health port never opened"
            await asyncio.sleep(0.1)


async def until(port: int, path: str, status: int, within: float = 60.0) -> str:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        got, body = await fetch(port, path)
        if got == status:
            return body
        assert asyncio.get_running_loop().time() < deadline, f"{path}: {got} {body}"
        await asyncio.sleep(0.2)


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return None


async def test_the_active_bot_is_ready_and_a_standby_says_so_until_it_takes_over(
    ctx, register_user, member_client, tmp_path
):
    party = await local_party(ctx, register_user)
    first_port, second_port = free_port(), free_port()
    first = bot_config(party.bot, tmp_path / "store", health_port=first_port)
    async with running(first, ctx):
        assert await fetch(first_port, "/healthz") == (200, "active\n")
        assert await fetch(first_port, "/readyz") == (200, "active\n")

        room_id = await room_of(ctx, "working-group")
        ann = await member_client(party.ann)
        await ann.wait_for_invite(room_id, within=30)
        await ann.join(room_id)
        asked = await ann.send_text(room_id, "!whoami")
        await reply_to(ann, room_id, asked)

        status, metrics = await fetch(first_port, "/metrics")
        assert status == 200
        assert sample(metrics, "harmony_bot_active") == 1
        assert 0 <= (sample(metrics, "harmony_bot_seconds_since_sync") or -1) < 120
        assert sample(metrics, "harmony_bot_commands_total", command="whoami", outcome="ok") == 1
        assert sample(metrics, "harmony_database_up") == 1
        # No Matrix ID, room ID or name of anyone.
        assert not re.search(r"[@!][\w.=-]+:", metrics)
        assert "Ann" not in metrics and "Test Working Group" not in metrics

        # A second replica on the same database: it waits for the lock, and says so.
        second = Bot(bot_config(party.bot, tmp_path / "store", health_port=second_port), ctx)
        waiting = asyncio.create_task(second.run())
        try:
            await answers(second_port)
            assert await fetch(second_port, "/healthz") == (200, "standby\n")
            assert await fetch(second_port, "/readyz") == (503, "standby\n")
            _status, standby_metrics = await fetch(second_port, "/metrics")
            assert sample(standby_metrics, "harmony_bot_active") == 0
            assert sample(standby_metrics, "harmony_bot_seconds_since_sync") == -1
        except BaseException:
            second.stop.set()
            await asyncio.wait_for(waiting, 30)
            raise
    # The first bot stopped (its port closed with it): the standby takes over.
    try:
        assert await until(second_port, "/readyz", 200) == "active\n"
        assert await fetch(second_port, "/healthz") == (200, "active\n")
        _status, metrics = await fetch(second_port, "/metrics")
        assert sample(metrics, "harmony_bot_active") == 1
        try:
            await fetch(first_port, "/healthz")
            raise AssertionError("the stopped bot's port still answers")
        except aiohttp.ClientConnectionError:
            pass
    finally:
        second.stop.set()
        await asyncio.wait_for(waiting, 30)
