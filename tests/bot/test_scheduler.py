"""The scheduler's loop: it does what is due, wakes the sender, sleeps until the next
thing is due (never a busy loop, even when a round cannot close), and stops at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from harmony_matrix.bot.scheduler import Scheduler
from harmony_matrix.services import ballots, due_work
from harmony_matrix.storage.models import BallotRound, BallotRoundStatus
from harmony_matrix.voting.sealing import RoundKeys
from tests.ballots.helpers import meeting_at_vote, voters
from tests.services.helpers import ANA


async def until(condition, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.02)


async def test_the_scheduler_closes_a_due_round_wakes_the_sender_and_stops(demo, clock):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    await ballots.open_ballot(demo, ANA, ref, closes_at=clock() + timedelta(hours=2))
    woken, rooms = [], []
    scheduler = Scheduler(demo, lambda: woken.append(True), rooms_changed=lambda: rooms.append(1))
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))

    async def closed() -> bool:
        return (await ballots.round_status(demo, ref)).status is BallotRoundStatus.CLOSED

    # Nothing is due yet (the 1-hour reminders are an hour away).
    await asyncio.sleep(0.2)
    assert not await closed() and woken == []
    # The tests' clock does not move by itself: move it past the close, and wake the
    # scheduler to look again.
    clock.current += timedelta(hours=2)
    scheduler.wake()
    await until(closed)
    await until(lambda: asyncio.sleep(0, bool(woken)))  # the closing announcement goes
    assert rooms  # a Thing it decided would have its room closed at once

    stop.set()
    await asyncio.wait_for(task, 2)


async def test_a_round_that_cannot_close_is_not_retried_in_a_tight_loop(demo, clock, monkeypatch):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    opened = await ballots.open_ballot(demo, ANA, ref, closes_at=clock() + timedelta(hours=1))
    key = await seal_key_of(demo, opened.round_id)
    (demo.ballot_keys_path / f"{RoundKeys(key).fingerprint}.key").unlink()
    clock.current += timedelta(hours=1)

    tries = []
    real_close = due_work.close_ballot

    async def counted_close(*args, **kwargs):
        tries.append(args)
        return await real_close(*args, **kwargs)

    monkeypatch.setattr(due_work, "close_ballot", counted_close)
    runs = []
    scheduler = Scheduler(demo, lambda: None)
    real_once = scheduler.run_once

    async def counted_once() -> None:
        runs.append(True)
        await real_once()

    scheduler.run_once = counted_once  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(1.0)
    # One try; the retry is a minute away on the tests' clock, which does not move:
    # the scheduler sleeps (its longest sleep) rather than spinning.
    assert len(tries) == 1
    assert len(runs) == 1
    stop.set()
    await asyncio.wait_for(task, 2)
    assert (await ballots.round_status(demo, ref)).status is BallotRoundStatus.OPEN


async def seal_key_of(ctx, round_id: int) -> bytes:
    async with ctx.transaction() as session:
        found = await session.get(BallotRound, round_id)
        assert found is not None and found.seal_key is not None
        return found.seal_key


async def test_the_scheduler_survives_a_failing_database_and_keeps_going(demo, monkeypatch):
    calls = []

    async def broken(_ctx, _retries=None):
        calls.append(True)
        raise ConnectionError("the database is away")

    monkeypatch.setattr(due_work, "close_due_rounds", broken)
    scheduler = Scheduler(demo, lambda: None, after_failure=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(0.55)
    stop.set()
    await asyncio.wait_for(task, 2)
    # It tried again after each pause, not continuously and not never.
    assert 3 <= len(calls) <= 7
