"""The rules of delivering the outbox, without Matrix: due messages, backoff, the
homeserver's retry_after, giving up and telling the secretaries, members who block
invitations, direct rooms, the 24-hour rule."""

from datetime import timedelta

from sqlalchemy import select

from harmony_matrix.i18n import _
from harmony_matrix.services import delivery, records
from harmony_matrix.services.delivery import Outcome, RetryPolicy
from harmony_matrix.storage.models import Assembly, OutboxMessage, Person
from tests.services.helpers import ANA, CHLOE, GWEN, MEDIA, OWG


async def queue(ctx, destination, key, *, is_direct=True):
    async with ctx.transaction() as session:
        assert await records.enqueue(
            session,
            ctx.now(),
            destination=destination,
            is_direct=is_direct,
            message=_("Hello"),
            language="en",
            dedupe_key=key,
        )
        found = await session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)
        )
        assert found is not None
        return found


async def row(ctx, outbox_id):
    async with ctx.transaction() as session:
        found = await session.get(OutboxMessage, outbox_id)
        session.expunge(found)
        return found


async def rows_to(ctx, destination):
    async with ctx.transaction() as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.destination == destination)
                .order_by(OutboxMessage.id)
            )
        )


def test_the_backoff_doubles_up_to_its_longest_with_bounded_jitter():
    policy = RetryPolicy(first=timedelta(seconds=10), longest=timedelta(minutes=5), jitter=0.2)
    middle = [policy.delay(n, rng=lambda: 0.5) for n in range(1, 8)]
    assert [d.total_seconds() for d in middle] == [10, 20, 40, 80, 160, 300, 300]
    assert policy.delay(1, rng=lambda: 0.0) == timedelta(seconds=8)
    assert policy.delay(1, rng=lambda: 1.0) == timedelta(seconds=12)
    assert policy.delay(30, rng=lambda: 0.999).total_seconds() <= 360


async def test_a_failure_is_retried_after_the_backoff_and_not_before(demo):
    ctx = demo
    outbox_id = await queue(ctx, GWEN, "t:1")
    assert [m.id for m in await delivery.due_messages(ctx)] == [outbox_id]
    outcome = await delivery.attempt_failed(ctx, outbox_id, "M_UNKNOWN boom", rng=lambda: 0.5)
    assert outcome is Outcome.RETRY
    failed = await row(ctx, outbox_id)
    assert (failed.attempts, failed.last_error) == (1, "M_UNKNOWN boom")
    assert failed.next_attempt_at == ctx.now() + timedelta(seconds=10)
    assert await delivery.due_messages(ctx) == []
    assert await delivery.next_due_at(ctx) == failed.next_attempt_at
    ctx.clock.advance(seconds=10)
    assert [m.id for m in await delivery.due_messages(ctx)] == [outbox_id]
    await delivery.attempt_failed(ctx, outbox_id, "again", rng=lambda: 0.5)
    assert (await row(ctx, outbox_id)).next_attempt_at == ctx.now() + timedelta(seconds=20)


async def test_the_homeservers_retry_after_wins_and_does_not_count_as_a_failure(demo):
    ctx = demo
    outbox_id = await queue(ctx, GWEN, "t:429")
    for _attempt in range(30):  # more 429s than the give-up budget
        outcome = await delivery.attempt_failed(
            ctx,
            outbox_id,
            "M_LIMIT_EXCEEDED",
            retry_after=timedelta(milliseconds=1500),
            counts=False,
        )
        assert outcome is Outcome.RETRY
    limited = await row(ctx, outbox_id)
    assert limited.attempts == 0 and limited.failed_at is None
    assert limited.next_attempt_at == ctx.now() + timedelta(milliseconds=1500)


async def test_delivered_messages_record_their_event_and_are_not_due_again(demo):
    ctx = demo
    outbox_id = await queue(ctx, GWEN, "t:sent")
    await delivery.mark_delivered(ctx, outbox_id, "$event")
    await delivery.mark_delivered(ctx, outbox_id, "$other")  # a second confirmation: no change
    sent = await row(ctx, outbox_id)
    assert (sent.sent_at, sent.event_id, sent.attempts) == (ctx.now(), "$event", 1)
    assert sent.first_attempt_at == ctx.now()
    assert await delivery.due_messages(ctx) == []


async def test_an_unreachable_member_is_given_up_and_reported_to_their_secretaries(demo):
    ctx = demo
    outbox_id = await queue(ctx, GWEN, "t:gwen")  # Gwen: Media WG and the OWG (everyone)
    policy = RetryPolicy(attempts=3)
    outcomes = []
    for _attempt in range(3):
        outcomes.append(
            await delivery.attempt_failed(ctx, outbox_id, "M_UNKNOWN server down", policy=policy)
        )
        ctx.clock.advance(hours=1)
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.GAVE_UP]
    given_up = await row(ctx, outbox_id)
    assert given_up.failed_at is not None and given_up.next_attempt_at is None
    assert outbox_id not in {m.id for m in await delivery.due_messages(ctx)}
    async with ctx.transaction() as session:
        gwen = await session.scalar(select(Person).where(Person.matrix_id == GWEN))
        expected = {p.matrix_id for p in await delivery.secretaries_of(session, gwen, ctx.now())}
        reports = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedupe_key.startswith("undelivered:"))
            )
        )
    assert ANA in expected and GWEN not in expected
    assert {r.destination for r in reports} == expected
    assert all(r.is_direct and GWEN in r.body and "server down" in r.body for r in reports)
    # Failing again changes nothing and reports nothing twice.
    assert await delivery.attempt_failed(ctx, outbox_id, "again") is Outcome.GAVE_UP
    assert len(await rows_to(ctx, ANA)) == 1


async def test_a_permanent_failure_gives_up_at_once(demo):
    ctx = demo
    outbox_id = await queue(ctx, CHLOE, "t:chloe")
    outcome = await delivery.attempt_failed(ctx, outbox_id, "M_NOT_FOUND", permanent=True)
    assert outcome is Outcome.GAVE_UP
    assert (await row(ctx, outbox_id)).attempts == 1


async def test_a_report_that_cannot_be_delivered_is_not_reported(demo):
    ctx = demo
    outbox_id = await queue(ctx, GWEN, "t:loop")
    await delivery.attempt_failed(ctx, outbox_id, "gone", permanent=True)
    report = next(r for r in await rows_to(ctx, ANA) if r.dedupe_key.startswith("undelivered:"))
    async with ctx.transaction() as session:
        count = select(OutboxMessage.id).where(OutboxMessage.dedupe_key.like("undelivered:%"))
        before = len(list(await session.scalars(count)))
    await delivery.attempt_failed(ctx, report.id, "gone too", permanent=True)
    async with ctx.transaction() as session:
        after = len(list(await session.scalars(count)))
    assert before > 0 and after == before
    assert (await row(ctx, report.id)).failed_at is not None


async def test_a_member_who_blocks_invites_is_told_once_per_room_and_their_messages_wait(demo):
    ctx = demo
    async with ctx.transaction() as session:
        for slug, room in ((MEDIA, "!media"), (OWG, "!owg")):
            assembly = await session.scalar(select(Assembly).where(Assembly.slug == slug))
            assembly.matrix_room_id = room
    first = await queue(ctx, GWEN, "t:b1")
    second = await queue(ctx, GWEN, "t:b2")
    assert await delivery.invites_blocked(ctx, GWEN, "@harmony:harmony.uk") == 2
    assert await delivery.invites_blocked(ctx, GWEN, "@harmony:harmony.uk") == 0  # told once
    notices = [*await rows_to(ctx, "!media"), *await rows_to(ctx, "!owg")]
    assert len(notices) == 2
    assert all(n.mention == GWEN and "@harmony:harmony.uk" in n.body for n in notices)
    assert {m.id for m in await delivery.due_messages(ctx)} == {n.id for n in notices}
    for outbox_id in (first, second):
        waiting = await row(ctx, outbox_id)
        assert waiting.next_attempt_at == ctx.now() + timedelta(days=1)
        assert waiting.attempts == 0 and waiting.failed_at is None

    # Gwen opens a direct room with the bot: her messages are due at once.
    ctx.clock.advance(minutes=5)
    assert await delivery.record_direct_room(ctx, GWEN, "!gwen-dm") == 2
    assert await delivery.direct_room(ctx, GWEN) == "!gwen-dm"
    due = {m.id for m in await delivery.due_messages(ctx)}
    assert {first, second} <= due


async def test_one_direct_room_per_person_replaced_or_forgotten(demo):
    ctx = demo
    assert await delivery.direct_room(ctx, GWEN) is None
    await delivery.record_direct_room(ctx, GWEN, "!one")
    await delivery.record_direct_room(ctx, GWEN, "!one")
    assert await delivery.direct_room(ctx, GWEN) == "!one"
    await delivery.record_direct_room(ctx, GWEN, "!two")
    assert await delivery.direct_room(ctx, GWEN) == "!two"
    await delivery.forget_direct_room(ctx, GWEN, "!one")  # not hers any more: no change
    assert await delivery.direct_room(ctx, GWEN) == "!two"
    await delivery.forget_direct_room(ctx, GWEN, "!two")
    assert await delivery.direct_room(ctx, GWEN) is None


async def test_the_24_hour_rule(demo):
    ctx = demo
    now = ctx.now()
    assert not delivery.needs_lookup(now, now)
    assert not delivery.needs_lookup(now - timedelta(hours=22, minutes=59), now)
    assert delivery.needs_lookup(now - timedelta(hours=23, minutes=1), now)
    await queue(ctx, GWEN, "t:24")
    (pending,) = await delivery.due_messages(ctx)
    assert not delivery.needs_lookup(pending.created_at, ctx.now())
    ctx.clock.advance(hours=30)  # queued a day ago: any attempt was at least as long ago
    (pending,) = await delivery.due_messages(ctx)
    assert delivery.needs_lookup(pending.created_at, ctx.now())


async def test_a_transaction_id_is_stable_per_row_and_differs_between_rows(demo):
    ctx = demo
    one = await queue(ctx, GWEN, "t:tx1")
    two = await queue(ctx, GWEN, "t:tx2")
    first = (await delivery.pending(ctx, one)).transaction_id
    assert first == (await delivery.pending(ctx, one)).transaction_id
    assert first.startswith(f"harmony-outbox-{one}-")
    assert first != (await delivery.pending(ctx, two)).transaction_id
