"""The sync loop: the position is saved only after a response was handled, the very
first sync is history, and it backs off on network errors and rate limits; a device
signed out while the bot runs stops it."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import ClientConnectionError
from nio import SyncError

from harmony_matrix.bot import sync as sync_module
from harmony_matrix.bot.session import LoginFailed, SyncPosition
from harmony_matrix.bot.sync import SyncLoop


class Response:
    """Enough of nio's SyncResponse for the loop."""

    def __init__(self, token: str) -> None:
        self.next_batch = token


class FakeClient:
    should_upload_keys = should_query_keys = should_claim_keys = False

    def __init__(self, script: list[object], stop: asyncio.Event) -> None:
        self.script = script
        self.stop = stop
        self.calls: list[dict] = []

    async def sync(self, **kwargs):
        self.calls.append(kwargs)
        if not self.script:
            self.stop.set()
            await asyncio.sleep(3600)
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    async def send_to_device_messages(self) -> None:
        return None


@pytest.fixture
def slept(monkeypatch):
    waits: list[float] = []

    async def no_wait(stop, seconds):
        waits.append(seconds)
        return stop.is_set()

    monkeypatch.setattr(sync_module, "sleep_unless", no_wait)
    return waits


def rate_limited(ms: int) -> SyncError:
    error = SyncError("Too many requests", "M_LIMIT_EXCEEDED")
    error.retry_after_ms = ms
    return error


async def test_first_sync_is_history_and_the_position_follows_handling(tmp_path, slept):
    stop = asyncio.Event()
    position = SyncPosition(tmp_path)
    seen: list[tuple[str, bool, str | None]] = []

    async def handle(response, first):
        # The position on disk is still the previous one while a response is handled.
        seen.append((response.next_batch, first, position.load()))

    client = FakeClient([Response("t1"), Response("t2")], stop)
    await SyncLoop(client, position, handle).run(stop)
    assert seen == [("t1", True, None), ("t2", False, "t1")]
    assert position.load() == "t2"
    # Full state on the first request (nio keeps no room state), the saved token after.
    assert client.calls[0]["full_state"] is True and client.calls[0]["since"] is None
    assert client.calls[1]["since"] == "t1" and client.calls[1]["full_state"] is None


async def test_a_restart_continues_from_the_saved_position_and_acts(tmp_path, slept):
    position = SyncPosition(tmp_path)
    position.save("t7")
    stop = asyncio.Event()
    seen = []

    async def handle(response, first):
        seen.append(first)

    client = FakeClient([Response("t8")], stop)
    await SyncLoop(client, position, handle).run(stop)
    assert client.calls[0]["since"] == "t7" and client.calls[0]["full_state"] is True
    assert seen == [False]  # not history: commands sent while the bot was down count


async def test_it_backs_off_on_network_errors_and_honours_retry_after(tmp_path, slept):
    stop = asyncio.Event()
    script = [
        ClientConnectionError("refused"),
        ClientConnectionError("refused"),
        ClientConnectionError("refused"),
        rate_limited(2500),
        Response("t1"),
        ClientConnectionError("refused"),
    ]
    handled = []

    async def handle(response, first):
        handled.append(response.next_batch)

    loop = SyncLoop(FakeClient(script, stop), SyncPosition(tmp_path), handle)
    await loop.run(stop)
    assert handled == ["t1"]
    first, second, third, limited, after_success = slept
    assert 0.5 <= first <= 1 and 1 <= second <= 2 and 2 <= third <= 4  # doubling, jittered
    assert limited == 2.5  # the homeserver's wish
    assert 0.5 <= after_success <= 1  # a success starts the backoff again


async def test_a_stop_during_a_long_poll_saves_nothing(tmp_path):
    stop = asyncio.Event()
    position = SyncPosition(tmp_path)
    position.save("t1")

    class Hanging(FakeClient):
        async def sync(self, **kwargs):
            self.calls.append(kwargs)
            await asyncio.sleep(3600)

    async def handle(response, first):
        raise AssertionError("nothing to handle")

    loop = SyncLoop(Hanging([], stop), position, handle)
    task = asyncio.create_task(loop.run(stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert position.load() == "t1"


async def test_a_revoked_token_stops_the_loop_naming_the_saved_login(tmp_path, slept):
    stop = asyncio.Event()
    position = SyncPosition(tmp_path)
    handled: list[str] = []

    async def handle(response, first):
        handled.append(response.next_batch)

    signed_out = SyncError("Invalid access token passed.", "M_UNKNOWN_TOKEN")
    client = FakeClient([Response("t1"), signed_out, Response("never")], stop)
    with pytest.raises(LoginFailed) as raised:
        await asyncio.wait_for(SyncLoop(client, position, handle).run(stop), 5)

    assert "credentials.json" in raised.value.message.render("en")
    assert handled == ["t1"] and position.load() == "t1"
    assert slept == []  # no retry of a token that will never work again


async def test_other_refusals_are_still_retried(tmp_path, slept):
    stop = asyncio.Event()
    client = FakeClient([SyncError("Internal error", "M_UNKNOWN"), Response("t1")], stop)

    async def handle(response, first):
        return None

    await SyncLoop(client, SyncPosition(tmp_path), handle).run(stop)
    assert len(slept) == 1 and SyncPosition(tmp_path).load() == "t1"


async def test_a_failure_while_handling_keeps_the_position_and_tries_again(tmp_path, slept):
    stop = asyncio.Event()
    position = SyncPosition(tmp_path)
    position.save("t0")
    attempts: list[str | None] = []

    async def handle(response, first):
        attempts.append(response.next_batch)
        if len(attempts) == 1:
            raise OSError("the database is away")
        assert position.load() == "t0"

    client = FakeClient([Response("t1"), Response("t1")], stop)
    await SyncLoop(client, position, handle).run(stop)
    assert attempts == ["t1", "t1"]
    assert [call["since"] for call in client.calls[:2]] == ["t0", "t0"]  # asked again
    assert position.load() == "t1" and len(slept) == 1
