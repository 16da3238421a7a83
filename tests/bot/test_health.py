"""What the bot's health port answers, on a clock the test moves: a standby is healthy
but not ready; an active bot is both while it syncs, and neither once its sync stalls."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from harmony_matrix.bot.health import STALE_AFTER_SECONDS, BotHealth, health_app
from harmony_matrix.metrics import BotMetrics
from harmony_matrix.services.context import ServiceContext


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic() -> Clock:
    return Clock()


@pytest.fixture
def health(monotonic: Clock) -> BotHealth:
    return BotHealth(monotonic)


@pytest.fixture
async def port(health: BotHealth, ctx: ServiceContext) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(health_app(health, BotMetrics(), ctx))) as client:
        yield client


async def answer(client: TestClient, path: str) -> tuple[int, str]:
    response = await client.get(path)
    return response.status, await response.text()


async def test_a_standby_is_healthy_but_not_ready(port):
    assert await answer(port, "/healthz") == (200, "standby\n")
    assert await answer(port, "/readyz") == (503, "standby\n")


async def test_an_active_bot_is_ready_once_it_syncs_and_unhealthy_when_its_sync_stalls(
    port, health, monotonic
):
    health.became_active()
    assert await answer(port, "/healthz") == (200, "starting\n")
    assert await answer(port, "/readyz") == (503, "starting\n")
    monotonic.now += STALE_AFTER_SECONDS + 1  # logged in, but no sync ever came
    assert await answer(port, "/healthz") == (503, "stalled\n")

    health.synced()
    assert await answer(port, "/healthz") == (200, "active\n")
    assert await answer(port, "/readyz") == (200, "active\n")
    monotonic.now += STALE_AFTER_SECONDS
    assert await answer(port, "/healthz") == (200, "active\n")
    monotonic.now += 1
    assert await answer(port, "/healthz") == (503, "stalled\n")
    assert await answer(port, "/readyz") == (503, "stalled\n")

    health.stood_down()  # lost its lock, or stopping
    assert await answer(port, "/healthz") == (200, "standby\n")


async def test_the_metrics_say_whether_it_acts_and_how_long_since_its_last_sync(
    port, health, monotonic
):
    text = await (await port.get("/metrics")).text()
    assert "harmony_bot_active 0.0" in text
    assert "harmony_bot_seconds_since_sync -1.0" in text
    health.became_active()
    health.synced()
    monotonic.now += 42
    response = await port.get("/metrics")
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = await response.text()
    assert "harmony_bot_active 1.0" in text
    assert "harmony_bot_seconds_since_sync 42.0" in text
    assert "harmony_outbox_unsent_messages 0.0" in text
