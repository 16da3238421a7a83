"""Work that falls due with time: ballots closed at their closing time, reminders 24 hours
and 1 hour before a meeting and before a ballot closes, each exactly once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, select, update

from harmony_matrix.constitution.process import Phase
from harmony_matrix.i18n import _, isolated
from harmony_matrix.services import ballots, due_work, preparation
from harmony_matrix.services.due_work import CloseRetries, current_window
from harmony_matrix.services.lookup import meeting_by_ref
from harmony_matrix.storage.models import (
    BallotRound,
    BallotRoundStatus,
    Meeting,
    OutboxMessage,
    Person,
)
from harmony_matrix.voting.sealing import RoundKeys
from tests.ballots.helpers import links_by_person, meeting_at_vote, path_of, voters
from tests.services.helpers import ANA, IRIS, JON, OWG, prepared_moot

HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)


async def reminders(ctx, kind: str = "") -> list[OutboxMessage]:
    async with ctx.transaction() as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.dedupe_key.startswith(f"remind:{kind}"))
                .order_by(OutboxMessage.id)
            )
        )


async def eligible_ids(ctx, ref: str) -> set[str]:
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, ref)
        return {p.matrix_id for p in await preparation.eligible_people(session, meeting, ctx.now())}


async def round_of(ctx, ref: str) -> BallotRound:
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, ref)
        found = await session.scalar(
            select(BallotRound).where(BallotRound.meeting_id == meeting.id)
        )
        assert found is not None
        return found


# The windows themselves


def test_the_windows_around_an_event():
    event_at = datetime(2026, 11, 12, 10, 0, tzinfo=UTC)
    name = lambda now: getattr(current_window(event_at, now), "name", None)  # noqa: E731
    assert name(event_at - DAY - timedelta(seconds=1)) is None
    assert name(event_at - DAY) == "24h"
    assert name(event_at - HOUR - timedelta(seconds=1)) == "24h"
    assert name(event_at - HOUR) == "1h"
    assert name(event_at - timedelta(seconds=1)) == "1h"
    assert name(event_at) is None
    assert name(event_at + DAY) is None


# Meetings


async def test_a_meeting_is_reminded_24_hours_and_1_hour_before_each_once(demo, clock):
    ref = await prepared_moot(demo, OWG, wait_for_start=False)
    starts_at = clock() + timedelta(days=10)
    eligible = await eligible_ids(demo, ref)
    assert IRIS not in eligible and JON not in eligible  # suspended

    clock.current = starts_at - DAY - timedelta(minutes=1)
    assert await due_work.queue_reminders(demo) == 0
    assert await due_work.next_due_at(demo) == starts_at - DAY

    clock.current = starts_at - DAY
    assert await due_work.queue_reminders(demo) == len(eligible)
    assert await due_work.queue_reminders(demo) == 0  # once
    clock.current = starts_at - 3 * HOUR
    assert await due_work.queue_reminders(demo) == 0
    assert await due_work.next_due_at(demo) == starts_at - HOUR

    clock.current = starts_at - HOUR + timedelta(minutes=10)
    assert await due_work.queue_reminders(demo) == len(eligible)
    assert await due_work.queue_reminders(demo) == 0
    clock.current = starts_at
    assert await due_work.queue_reminders(demo) == 0
    assert await due_work.next_due_at(demo) is None

    sent = await reminders(demo, "meeting")
    assert len(sent) == 2 * len(eligible)
    assert {m.destination for m in sent} == eligible
    assert all(m.is_direct for m in sent)
    first, second = sent[0], sent[-1]
    assert "starts in less than 24 hours" in first.body
    assert "starts in less than an hour" in second.body
    for message in (first, second):
        assert "Thursday, 12 November 2026, 10:00 (Greenwich Mean Time)" in message.body
        assert f"Where: {isolated('Community Hall, 1 High St')}" in message.body
        assert "Online: https://meet.example/harmony" in message.body
        assert "Access: \u2068Step-free entrance" in message.body
    meeting_id = ref.removeprefix("M-")
    assert first.dedupe_key.startswith(
        f"remind:meeting:{meeting_id}:24h:{starts_at.isoformat()}:person:"
    )


async def test_a_reminder_is_in_the_reader_s_language(demo, clock):
    await prepared_moot(demo, OWG, wait_for_start=False)
    async with demo.transaction() as session:
        ana = await session.scalar(select(Person).where(Person.matrix_id == ANA))
        assert ana is not None
        ana.language = "fr"
    clock.current += timedelta(days=9, minutes=1)
    await due_work.queue_reminders(demo)
    to_ana = [m for m in await reminders(demo, "meeting") if m.destination == ANA]
    assert len(to_ana) == 1 and to_ana[0].language == "fr"
    assert "novembre" in to_ana[0].body  # the date at least is French, whatever the catalog


async def test_a_window_that_passed_is_not_sent_late(demo, clock):
    ref = await prepared_moot(demo, OWG, wait_for_start=False)
    starts_at = clock() + timedelta(days=10)
    # The bot was down for the whole 24-hour window: only the 1-hour reminder goes.
    clock.current = starts_at - timedelta(minutes=30)
    queued = await due_work.queue_reminders(demo)
    assert queued == len(await eligible_ids(demo, ref))
    assert all(":1h:" in m.dedupe_key for m in await reminders(demo))
    # And after the start, nothing at all.
    clock.current = starts_at + timedelta(minutes=1)
    assert await due_work.queue_reminders(demo) == 0


async def test_a_rescheduled_meeting_reminds_again_for_its_new_time(demo, clock):
    ref = await prepared_moot(demo, OWG, wait_for_start=False)
    starts_at = clock() + timedelta(days=10)
    clock.current = starts_at - DAY + HOUR
    told = await due_work.queue_reminders(demo)
    assert told > 0

    later = starts_at + timedelta(days=2)
    await preparation.schedule(
        demo, ANA, ref, later, place="Community Hall, 1 High St", accessibility="Step-free"
    )
    assert await due_work.queue_reminders(demo) == 0  # the new time is 3 days away
    clock.current = later - DAY
    assert await due_work.queue_reminders(demo) == told
    keys = [m.dedupe_key for m in await reminders(demo, "meeting")]
    assert len(keys) == len(set(keys)) == 2 * told
    assert sum(later.isoformat() in key for key in keys) == told


async def test_a_meeting_set_30_minutes_ahead_gets_no_24_hour_reminder(demo, clock):
    ref = await prepared_moot(demo, OWG, wait_for_start=False)
    soon = clock() + timedelta(minutes=30)
    await preparation.schedule(
        demo, ANA, ref, soon, place="Community Hall, 1 High St", accessibility="Step-free"
    )
    assert await due_work.queue_reminders(demo) == len(await eligible_ids(demo, ref))
    assert {m.dedupe_key.split(":")[3] for m in await reminders(demo)} == {"1h"}


async def test_finished_or_unscheduled_meetings_are_not_reminded(demo, clock):
    ref = await prepared_moot(demo, OWG, wait_for_start=False)
    async with demo.transaction() as session:
        meeting = await meeting_by_ref(session, ref)
        meeting.phase = Phase.CANCELLED
    clock.current += timedelta(days=9, hours=12)
    assert await due_work.queue_reminders(demo) == 0
    assert await due_work.next_due_at(demo) is None


async def test_a_meeting_opened_early_is_not_reminded_that_it_starts(demo, clock):
    ref = await prepared_moot(demo, OWG, wait_for_start=False)
    clock.current += timedelta(days=9, hours=12)
    async with demo.transaction() as session:
        (await meeting_by_ref(session, ref)).phase = Phase.DISCUSSION
    assert await due_work.queue_reminders(demo) == 0
    assert await due_work.next_due_at(demo) is None


async def test_a_person_suspended_since_is_not_reminded(demo, clock):
    ref = await prepared_moot(demo, OWG, wait_for_start=False)
    clock.current += timedelta(days=9, hours=12)
    async with demo.transaction() as session:
        ana = await session.scalar(select(Person).where(Person.matrix_id == ANA))
        assert ana is not None
        ana.suspended_from = clock() - HOUR
    await due_work.queue_reminders(demo)
    destinations = {m.destination for m in await reminders(demo)}
    assert ANA not in destinations
    assert destinations.isdisjoint({IRIS, JON})
    assert destinations == await eligible_ids(demo, ref)


# Ballots closed at their closing time


async def test_a_round_closes_at_its_closing_time_and_not_before(demo, clock):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    closes_at = clock() + timedelta(hours=2)
    opened = await ballots.open_ballot(demo, ANA, ref, closes_at=closes_at)
    links = await links_by_person(demo)
    await ballots.cast_ballot(demo, path_of(links[present[0]]), {1: 5, 2: 1, 3: 0})

    assert await due_work.next_due_at(demo) == closes_at - HOUR  # its 1-hour reminder
    clock.current = closes_at - timedelta(seconds=1)
    assert await due_work.close_due_rounds(demo) == []
    assert (await ballots.round_status(demo, ref)).status is BallotRoundStatus.OPEN
    assert await due_work.next_due_at(demo) == closes_at

    clock.current = closes_at
    assert await due_work.close_due_rounds(demo) == [ref]
    status = await ballots.round_status(demo, ref)
    assert status.status is BallotRoundStatus.CLOSED and status.round_id == opened.round_id
    assert status.result is not None and status.cast == 1
    assert await due_work.close_due_rounds(demo) == []  # once
    assert await due_work.next_due_at(demo) is None

    async with demo.transaction() as session:
        said = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedupe_key.startswith("ballot-closed:"))
            )
        )
    assert len(said) == 1
    assert said[0].destination == f"meeting:{ref.removeprefix('M-')}"
    assert "closed at its closing time" in said[0].body


async def test_a_round_found_late_is_closed_when_the_scheduler_comes_back(demo, clock):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    opened = await ballots.open_ballot(demo, ANA, ref, closes_at=clock() + HOUR)
    clock.current += timedelta(days=2)  # the bot was down
    assert await due_work.next_due_at(demo) == opened.closes_at  # in the past: due now
    assert await due_work.close_due_rounds(demo) == [ref]


async def test_a_round_that_cannot_close_does_not_hold_up_another(demo, clock, caplog):
    first = await meeting_at_vote(demo, await voters(demo, 6))
    second = await meeting_at_vote(demo, await voters(demo, 7))
    closes_at = clock() + HOUR
    await ballots.open_ballot(demo, ANA, first, closes_at=closes_at)
    await ballots.open_ballot(demo, ANA, second, closes_at=closes_at)
    broken = await round_of(demo, first)
    assert broken.seal_key is not None
    (demo.ballot_keys_path / f"{RoundKeys(broken.seal_key).fingerprint}.key").unlink()

    retries = CloseRetries()
    clock.current = closes_at
    with caplog.at_level(logging.ERROR, logger="harmony_matrix.services.due_work"):
        assert await due_work.close_due_rounds(demo, retries) == [second]
    assert (await ballots.round_status(demo, first)).status is BallotRoundStatus.OPEN
    assert "M-1" in caplog.text and "key" in caplog.text
    # Not tried again in a tight loop: the next try is a minute on.
    caplog.clear()
    assert await due_work.close_due_rounds(demo, retries) == []
    assert caplog.text == ""
    assert await due_work.next_due_at(demo, retries) == closes_at + timedelta(minutes=1)

    clock.current += timedelta(minutes=1)
    with caplog.at_level(logging.ERROR, logger="harmony_matrix.services.due_work"):
        assert await due_work.close_due_rounds(demo, retries) == []
    assert caplog.text.count("did not close") == 1
    # Then at doubling intervals.
    assert await due_work.next_due_at(demo, retries) == clock() + timedelta(minutes=2)


# Ballot reminders


async def test_every_right_holder_is_reminded_whether_they_voted_or_not(demo, clock):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    closes_at = clock() + timedelta(hours=48)
    opened = await ballots.open_ballot(demo, ANA, ref, closes_at=closes_at)
    links = await links_by_person(demo)
    for who in present[:3]:  # half of them vote
        await ballots.cast_ballot(demo, path_of(links[who]), {1: 5, 2: 2, 3: 0})

    assert await due_work.queue_reminders(demo) == 0  # 48 hours ahead: not yet
    assert await due_work.next_due_at(demo) == closes_at - DAY

    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement.lower())

    event.listen(demo.engine.sync_engine, "before_cursor_execute", seen)
    try:
        clock.current = closes_at - DAY
        assert await due_work.queue_reminders(demo) == 6
    finally:
        event.remove(demo.engine.sync_engine, "before_cursor_execute", seen)
    # The database cannot tell who voted, and the reminders do not ask it.
    read = " ".join(statements)
    assert "voting_rights" in read
    for secret in ("sealed_ballots", "spent_tokens", "counted_ballots"):
        assert secret not in read

    assert await due_work.queue_reminders(demo) == 0
    clock.current = closes_at - timedelta(minutes=59)
    assert await due_work.queue_reminders(demo) == 6
    clock.current = closes_at
    assert await due_work.queue_reminders(demo) == 0

    sent = await reminders(demo, "round")
    assert len(sent) == 12
    assert {m.destination for m in sent} == set(present)
    already = _(
        "If you have voted already, thank you. You can ignore this message. If you "
        "have not, use the link in your ballot message from Harmony."
    )
    for message in sent:  # each in the reader's language
        assert already.render(message.language) in message.body
        assert message.voting_right_id is None  # no link in a reminder
    english = [m for m in sent if m.language == "en"]
    assert "closes in less than 24 hours" in english[0].body
    assert "closes in less than an hour" in english[-1].body
    assert sent[0].dedupe_key.startswith(f"remind:round:{opened.round_id}:24h:person:")
    assert sent[-1].dedupe_key.startswith(f"remind:round:{opened.round_id}:1h:person:")


async def test_a_window_already_open_when_the_ballot_opened_is_skipped(demo, clock):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    closes_at = clock() + 2 * HOUR
    await ballots.open_ballot(demo, ANA, ref, closes_at=closes_at)
    # Opened 2 hours before its close: the ballot message itself is the first reminder.
    assert await due_work.queue_reminders(demo) == 0
    clock.current = closes_at - HOUR
    assert await due_work.queue_reminders(demo) == 6
    assert {m.dedupe_key.split(":")[3] for m in await reminders(demo, "round")} == {"1h"}


async def test_a_ballot_opened_within_the_hour_is_not_reminded(demo, clock):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    closes_at = clock() + timedelta(minutes=30)
    await ballots.open_ballot(demo, ANA, ref, closes_at=closes_at)
    for minutes in (0, 10, 29):
        clock.current = closes_at - timedelta(minutes=30 - minutes)
        assert await due_work.queue_reminders(demo) == 0


async def test_a_suspended_right_holder_is_not_reminded(demo, clock):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref, closes_at=clock() + 2 * HOUR)
    async with demo.transaction() as session:
        await session.execute(
            update(Person).where(Person.matrix_id == present[1]).values(suspended_from=clock())
        )
    clock.current += 90 * timedelta(minutes=1)
    assert await due_work.queue_reminders(demo) == 5
    assert present[1] not in {m.destination for m in await reminders(demo, "round")}


async def test_a_closed_round_is_not_reminded(demo, clock):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref, closes_at=clock() + 2 * HOUR)
    links = await links_by_person(demo)
    for who in present:
        await ballots.cast_ballot(demo, path_of(links[who]), {1: 5, 2: 2, 3: 0})
    await ballots.close_ballot(demo, ANA, ref)  # everyone voted: it may close early
    clock.current += 90 * timedelta(minutes=1)
    assert await due_work.queue_reminders(demo) == 0


# Any times at all


@pytest.fixture
async def meeting_and_round(demo, clock):
    """A meeting at its vote with an open round; the tests move both times freely."""
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    await ballots.open_ballot(demo, ANA, ref, closes_at=clock() + DAY)
    return demo, ref


offsets = st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60).map(
    lambda minutes: timedelta(minutes=minutes)
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    starts_in=offsets,
    closes_in=offsets,
    calls=st.lists(offsets, min_size=1, max_size=6),
)
async def test_never_a_reminder_after_the_event_nor_two_for_one_window(
    meeting_and_round, clock, starts_in, closes_in, calls
):
    ctx, ref = meeting_and_round
    base = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
    starts_at, closes_at = base + starts_in, base + closes_in
    async with ctx.transaction() as session:
        await session.execute(
            delete(OutboxMessage).where(OutboxMessage.dedupe_key.like("remind:%"))
        )
        await session.execute(update(Meeting).values(starts_at=starts_at))
        await session.execute(update(BallotRound).values(closes_at=closes_at))
    expected_queued = 0
    for moment in sorted(base + call for call in calls):
        clock.current = moment
        queued = await due_work.queue_reminders(ctx)
        expected_queued += queued
        due = await due_work.next_due_at(ctx)
        assert due is None or due > moment or due == closes_at  # never a busy loop
    sent = await reminders(ctx)
    assert len(sent) == expected_queued
    keys = [m.dedupe_key for m in sent]
    assert len(keys) == len(set(keys))
    for message in sent:
        event_at = starts_at if message.dedupe_key.startswith("remind:meeting") else closes_at
        window = message.dedupe_key.split(":")[3]
        ahead = DAY if window == "24h" else HOUR
        # Queued inside its window: before the event, not earlier than the window opens.
        assert event_at - ahead <= message.created_at < event_at
        if window == "24h":
            assert message.created_at < event_at - HOUR
    # A window, once sent, went to everyone concerned, each once.
    eligible = await eligible_ids(ctx, ref)
    per_window: dict[str, set[str]] = {}
    for message in sent:
        per_window.setdefault(message.dedupe_key.rsplit(":person:", 1)[0], set()).add(
            message.destination
        )
    for window_key, people in per_window.items():
        assert len(people) == (6 if window_key.startswith("remind:round") else len(eligible))
