"""The calendar file sent with every notice: it parses, keeps the party's wall time across
a change of the clocks, updates the same entry with each new notice, and carries what
members wrote exactly."""

from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import icalendar
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from harmony_matrix.constitution.scheduling import MeetingKind, kind_name
from harmony_matrix.i18n import isolated as iso
from harmony_matrix.services import meetings, preparation
from harmony_matrix.services.calendar import calendar_text, meeting_calendar
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import OutboxMessage
from tests.conftest import read_english

from .helpers import ANA, CHLOE, GWEN, MEDIA

LONDON = ZoneInfo("Europe/London")

HOSTILE_PLACE = 'Hall, Room 1; "Main"\nBack door \\ <b>@room</b> \u202eevil\u202c'
HOSTILE_QUESTION = "Should we; or not, <script>alert(1)</script> @room **bold**?\nSecond line"


def _event(data: bytes) -> icalendar.Event:
    calendar = icalendar.Calendar.from_ical(data)
    [event] = calendar.walk("VEVENT")
    return event


async def _files(ctx, destination: str) -> list[OutboxMessage]:
    async with ctx.transaction() as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.destination == destination,
                    OutboxMessage.attachment.is_not(None),
                )
                .order_by(OutboxMessage.id)
            )
        )


async def _moot_on(ctx, clock, starts: datetime, question: str = "Weekly posts?") -> str:
    called = await meetings.call_moot(ctx, ANA, MEDIA, question)
    await preparation.schedule(
        ctx,
        ANA,
        called.ref,
        starts,
        place=HOSTILE_PLACE,
        online_url="https://meet.example/harmony?room=a,b;c",
        accessibility="Step-free entrance; captions, large print",
        route_help="Bus 12, then 5 minutes' walk",
    )
    await preparation.notify(ctx, ANA, called.ref)
    return called.ref


async def test_each_notice_is_followed_by_its_calendar_file(demo, clock):
    await read_english(demo)
    starts = demo.now() + timedelta(days=10)
    ref = await _moot_on(demo, clock, starts, HOSTILE_QUESTION)
    meeting_id = int(ref[2:])
    async with demo.transaction() as session:
        to_gwen = list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.destination == GWEN)
                .order_by(OutboxMessage.id)
            )
        )
    # The notice, then the file: its name is the message's body.
    assert [m.attachment is None for m in to_gwen] == [True, False]
    notice, ics = to_gwen
    assert ics.body == f"{ref}.ics" and ics.attachment_type == "text/calendar"
    assert ics.dedupe_key == f"notice-ics:{meeting_id}:1:person:{ics.dedupe_key.split(':')[-1]}"
    assert ics.is_direct and ics.language == notice.language == "en"  # as Gwen chose
    event = _event(ics.attachment)
    assert str(event["uid"]) == f"{ref}@hpuk.harmony"
    assert event["sequence"] == 1
    # Hostile text round-trips exactly: commas, semicolons, backslashes, markup, @room.
    assert str(event["location"]) == HOSTILE_PLACE
    assert str(event["summary"]) == f"Assembly Moot {ref}: {HOSTILE_QUESTION}"
    assert str(event["url"]) == "https://meet.example/harmony?room=a,b;c"
    description = str(event["description"])
    for line in (
        f"Question: {HOSTILE_QUESTION}",
        f"Where: {iso(HOSTILE_PLACE)}",
        "Online: https://meet.example/harmony?room=a,b;c",
        f"Access: {iso('Step-free entrance; captions, large print')}",
        "Getting there: " + iso("Bus 12, then 5 minutes' walk"),
    ):
        assert line in description
    # One in the meeting's room too (a Moot's room is its assembly's: no second notice).
    [room_file] = await _files(demo, f"meeting:{meeting_id}")
    assert room_file.body == f"{ref}.ics" and not room_file.is_direct
    async with demo.transaction() as session:
        in_meeting_room = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.destination == f"meeting:{meeting_id}")
            )
        )
    assert [m.id for m in in_meeting_room] == [room_file.id]
    # Informing again with nothing changed queues no file twice.
    before = len(await _files(demo, GWEN))
    assert await preparation.notify(demo, ANA, ref) == 0
    assert len(await _files(demo, GWEN)) == before
    assert notice.body.startswith("You are invited")


async def test_the_file_is_in_the_readers_language(demo, clock):
    ref = await _moot_on(demo, clock, demo.now() + timedelta(days=10))
    [to_chloe] = await _files(demo, CHLOE)  # Chloé reads French
    description = str(_event(to_chloe.attachment)["description"])
    assert "Question : Weekly posts?" in description and "Où : " in description
    assert to_chloe.body == f"{ref}.ics"


async def test_the_wall_time_holds_across_the_change_to_summer_time(demo, clock):
    # Scheduled in winter (GMT) for the day after the clocks go forward (BST).
    clock.current = datetime(2027, 3, 20, 12, 0, tzinfo=UTC)
    starts = datetime(2027, 3, 29, 19, 0, tzinfo=LONDON)  # 18:00 UTC
    ref = await _moot_on(demo, clock, starts)
    [ics] = await _files(demo, GWEN)
    calendar = icalendar.Calendar.from_ical(ics.attachment)
    [event] = calendar.walk("VEVENT")
    start, end = event.decoded("dtstart"), event.decoded("dtend")
    assert start.tzinfo is not None and str(start.tzinfo) == "Europe/London"
    assert (start.date(), start.time()) == (date(2027, 3, 29), time(19, 0))
    assert start.astimezone(UTC) == datetime(2027, 3, 29, 18, 0, tzinfo=UTC)
    assert end - start == timedelta(hours=2)
    assert "DTSTART;TZID=Europe/London:20270329T190000" in ics.attachment.decode()
    # The zone's rules travel with the file, covering the change of the clocks.
    [zone] = calendar.walk("VTIMEZONE")
    assert str(zone["tzid"]) == "Europe/London"
    assert {str(c["tzname"]) for c in zone.walk() if c.name in ("STANDARD", "DAYLIGHT")} == {
        "GMT",
        "BST",
    }
    assert ref


async def test_and_across_the_change_back_to_winter_time(demo, clock):
    clock.current = datetime(2027, 10, 25, 12, 0, tzinfo=UTC)  # BST
    starts = datetime(2027, 11, 1, 19, 0, tzinfo=LONDON)  # GMT again: 19:00 UTC
    await _moot_on(demo, clock, starts)
    [ics] = await _files(demo, GWEN)
    start = _event(ics.attachment).decoded("dtstart")
    assert start.time() == time(19, 0) and start.astimezone(UTC).hour == 19


async def test_a_new_notice_updates_the_same_entry(demo, clock):
    starts = demo.now() + timedelta(days=10)
    ref = await _moot_on(demo, clock, starts)
    await preparation.schedule(
        demo,
        ANA,
        ref,
        starts + timedelta(hours=1),
        place="Library",
        accessibility="Step-free entrance",
    )
    await preparation.notify(demo, ANA, ref)
    first, second = await _files(demo, GWEN)
    old, new = _event(first.attachment), _event(second.attachment)
    assert str(old["uid"]) == str(new["uid"])
    assert (old["sequence"], new["sequence"]) == (1, 2)
    assert str(new["location"]) == "Library" and "url" not in new
    assert new.decoded("dtstart") - old.decoded("dtstart") == timedelta(hours=1)


async def test_an_undated_notice_has_no_calendar_file(demo):
    called = await meetings.call_moot(demo, ANA, MEDIA, "Weekly posts?")
    await preparation.notify(demo, ANA, called.ref)
    assert await _files(demo, GWEN) == []


def _meeting(**text: str) -> SimpleNamespace:
    values = {"question": "Q?", "place": "", "online_url": "", "accessibility": "a"}
    return SimpleNamespace(
        id=12,
        kind=MeetingKind.ASSEMBLY_MOOT,
        starts_at=datetime(2026, 11, 12, 19, 0, tzinfo=UTC),
        route_help="",
        schedule_explanation="",
        **{**values, **text},
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(place=st.text(min_size=1), question=st.text(min_size=1), url=st.text())
def test_any_text_round_trips(ctx: ServiceContext, place: str, question: str, url: str) -> None:
    meeting = _meeting(place=place, question=question, online_url=url)
    event = _event(meeting_calendar(meeting, ctx))  # type: ignore[arg-type]
    assert str(event["location"]) == calendar_text(place)
    assert str(event["summary"]) == calendar_text(f"Assembly Moot M-12: {question}")
    if "url" in event:
        assert str(event["url"]) == url
    assert calendar_text(f"Question: {question}") in str(event["description"])


@given(text=st.text(st.characters(blacklist_categories=("Cc", "Cs"))))
def test_text_without_control_characters_is_kept_as_it_is(text: str) -> None:
    assert calendar_text(text) == text


async def test_the_calendar_file_speaks_its_readers_language(demo, clock):
    """Gwen reads Welsh (members.csv): her file's title and lines are Welsh."""
    ref = await _moot_on(demo, clock, demo.now() + timedelta(days=10), "Cwestiwn?")
    [ics] = await _files(demo, GWEN)
    assert ics.language == "cy"
    event = _event(ics.attachment)
    welsh_kind = kind_name(MeetingKind.ASSEMBLY_MOOT).render("cy")
    assert welsh_kind != "Assembly Moot"
    assert str(event["summary"]) == f"{welsh_kind} {ref}: Cwestiwn?"
    assert "Question:" not in str(event["description"])
