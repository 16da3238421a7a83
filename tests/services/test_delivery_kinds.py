"""The delivery rules of messages to a meeting's room and of pinned messages, without
Matrix: which room a meeting's messages go to, how long they wait for it, and which
version of a pinned message is the newest."""

from __future__ import annotations

from sqlalchemy import select, update

from harmony_matrix.i18n import _
from harmony_matrix.services import delivery, meetings, records
from harmony_matrix.services.announcements import meeting_destination
from harmony_matrix.services.delivery import Outcome
from harmony_matrix.storage.models import Assembly, Meeting, OutboxMessage
from tests.services.helpers import ANA, MEDIA, OWG


def meeting_id(ref: str) -> int:
    return int(ref.split("-")[1])


async def set_room(ctx, model, where, room_id: str | None) -> None:
    async with ctx.transaction() as session:
        await session.execute(update(model).where(where).values(matrix_room_id=room_id))


async def queue(ctx, key: str, *, pin_key: str | None = None, destination: str = "!room") -> int:
    async with ctx.transaction() as session:
        await records.enqueue(
            session,
            ctx.now(),
            destination=destination,
            is_direct=False,
            message=_("Hello"),
            language="en",
            dedupe_key=key,
            pin_key=pin_key,
        )
        found = await session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key)
        )
        assert found is not None
        return found


async def pending(ctx, outbox_id: int) -> delivery.Pending:
    found = await delivery.pending(ctx, outbox_id)
    assert found is not None
    return found


async def test_a_moot_is_held_in_its_assemblys_room_and_a_thing_in_its_own(demo):
    moot = meeting_id((await meetings.call_moot(demo, ANA, OWG, "Tuesdays?")).ref)
    thing = meeting_id((await meetings.call_thing(demo, ANA, [OWG, MEDIA], "Merge?")).ref)
    assert await delivery.room_of_meeting(demo, moot) is None  # the OWG has no room yet
    assert await delivery.room_of_meeting(demo, thing) is None
    await set_room(demo, Assembly, Assembly.slug == OWG, "!owg")
    assert await delivery.room_of_meeting(demo, moot) == "!owg"
    assert await delivery.room_of_meeting(demo, thing) is None  # never an assembly's room
    await set_room(demo, Meeting, Meeting.id == thing, "!thing")
    assert await delivery.room_of_meeting(demo, thing) == "!thing"
    await set_room(demo, Meeting, Meeting.id == moot, "!moot-own")
    assert await delivery.room_of_meeting(demo, moot) == "!moot-own"
    assert await delivery.room_of_meeting(demo, 999) is None
    message = await pending(demo, await queue(demo, "to-moot", destination=f"meeting:{moot}"))
    assert message.meeting_id == moot and not message.is_direct
    assert meeting_destination(moot) == message.destination


async def test_waiting_for_a_room_is_not_a_failed_attempt_and_ends_after_a_week(demo):
    outbox_id = await queue(demo, "wait", destination="meeting:1")
    assert await delivery.wait_for_room(demo, outbox_id) is Outcome.RETRY
    waiting = await pending(demo, outbox_id)
    assert waiting.attempts == 0 and waiting.first_attempt_at is None
    assert await delivery.due_messages(demo) == []
    demo.clock.advance(seconds=31)
    assert [m.id for m in await delivery.due_messages(demo)] == [outbox_id]
    demo.clock.advance(days=7)
    assert await delivery.wait_for_room(demo, outbox_id) is Outcome.GAVE_UP
    assert await delivery.pending(demo, outbox_id) is None


async def test_only_the_newest_version_that_is_not_given_up_supersedes(demo):
    first = await queue(demo, "v1", pin_key="state:M-1")
    second = await queue(demo, "v2", pin_key="state:M-1")
    other = await queue(demo, "w1", pin_key="state:M-2")
    third = await queue(demo, "v3", pin_key="state:M-1")
    assert await delivery.newer_version(demo, await pending(demo, first)) == third
    assert await delivery.newer_version(demo, await pending(demo, third)) is None
    assert await delivery.newer_version(demo, await pending(demo, other)) is None
    await delivery.give_up(demo, third, "gone", report=False)
    assert await delivery.newer_version(demo, await pending(demo, first)) == second
    await delivery.mark_superseded(demo, first, second)
    assert await delivery.pending(demo, first) is None


async def test_a_pinned_message_is_recorded_with_its_first_version(demo):
    outbox_id = await queue(demo, "p1", pin_key="state:M-1")
    assert await delivery.pinned_message(demo, "state:M-1") is None
    await delivery.mark_delivered(demo, outbox_id, "$first", pinned_in="!room")
    assert await delivery.pinned_message(demo, "state:M-1") == delivery.PinnedMessage(
        "!room", "$first"
    )
    long_key = "k" * 64  # as long as the column allows
    name = delivery.pin_state_name(long_key)
    assert len(name) <= delivery.STATE_NAME_LIMIT and name.startswith("pinned:")
    assert name != delivery.pin_state_name("k" * 63 + "j")
    long_id = await queue(demo, "p2", pin_key=long_key)
    await delivery.mark_delivered(demo, long_id, "$long", pinned_in="!room")
    assert await delivery.pinned_message(demo, long_key) == delivery.PinnedMessage("!room", "$long")
