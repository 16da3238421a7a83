from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmony_matrix.constitution.interpretations import DaysCountedFrom, Rules
from harmony_matrix.constitution.scheduling import (
    MeetingKind,
    check_date,
    check_originator_available,
    last_day,
    parse_local_datetime,
)
from harmony_matrix.errors import InvalidInput, RuleViolation

RULES = Rules()
TZ = "Europe/London"
TRIGGERED = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)  # 23:30 on 1 November in London


def at(day: int, hour: int = 19, month: int = 11) -> datetime:
    return parse_local_datetime(f"2026-{month:02d}-{day:02d}", f"{hour:02d}:00", TZ)


@pytest.mark.parametrize(
    ("kind", "starts", "days", "allowed_without_reason"),
    [
        (MeetingKind.ASSEMBLY_MOOT, at(15), 14, True),
        (MeetingKind.ASSEMBLY_MOOT, at(16), 15, False),
        (MeetingKind.ASSEMBLY_MOOT, at(2), 1, True),
        (MeetingKind.THING_OF_ASSEMBLIES, at(22), 21, True),
        (MeetingKind.THING_OF_ASSEMBLIES, at(23), 22, False),
        (MeetingKind.PARTY_THING, at(22), 21, True),
        (MeetingKind.PARTY_THING, at(23), 22, False),
        (MeetingKind.PARTY_CONFERENCE, at(20, month=12), 49, True),  # exempt
    ],
)
def test_date_limits(kind, starts, days, allowed_without_reason):
    if allowed_without_reason:
        check = check_date(kind, TRIGGERED, starts, None, RULES, TZ, scheduled_at=TRIGGERED)
        assert check.days_after_trigger == days == check.days_counted
        assert not check.explanation_required
    else:
        with pytest.raises(RuleViolation) as caught:
            check_date(kind, TRIGGERED, starts, "  ", RULES, TZ, scheduled_at=TRIGGERED)
        assert f"{days} days" in str(caught.value.message)
        check = check_date(
            kind, TRIGGERED, starts, "The hall is booked until then.", RULES, TZ, scheduled_at=at(2)
        )
        assert check.explanation_required
        assert check.days_after_trigger == days


def test_days_are_counted_in_the_party_timezone():
    # 00:30 UTC on 2 Nov is still 2 Nov in London (GMT): 14 days later is 16 Nov.
    triggered = datetime(2026, 11, 2, 0, 30, tzinfo=UTC)
    assert (
        check_date(
            MeetingKind.ASSEMBLY_MOOT,
            triggered,
            at(16, 23),
            None,
            RULES,
            TZ,
            scheduled_at=triggered,
        ).days_after_trigger
        == 14
    )
    # In summer London is UTC+1: 23:30 UTC on 1 July is already 2 July.
    summer = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    check = check_date(
        MeetingKind.ASSEMBLY_MOOT, summer, at(16, 10, month=7), None, RULES, TZ, scheduled_at=summer
    )
    assert check.days_after_trigger == 14


def test_meeting_must_follow_the_trigger():
    with pytest.raises(RuleViolation):
        check_date(
            MeetingKind.ASSEMBLY_MOOT, TRIGGERED, TRIGGERED, None, RULES, TZ, scheduled_at=TRIGGERED
        )


def test_configurable_limit():
    rules = Rules(moot_date_limit_days=7)
    with pytest.raises(RuleViolation):
        check_date(MeetingKind.ASSEMBLY_MOOT, TRIGGERED, at(9), None, rules, TZ, scheduled_at=at(2))


@pytest.mark.parametrize("kind", list(MeetingKind))
def test_which_day_the_moot_limit_counts_from(kind):
    """A Moot "further than 14 days away": by default from the call, like the Thing's
    "21 days from the date when its planning was triggered"; configurable to count from
    the day the date is set."""
    scheduled = at(11)  # ten days after the call
    starts = at(25)  # 24 days after the call, 14 days after the date was set
    from_scheduling = Rules(moot_days_counted_from=DaysCountedFrom.SCHEDULING)
    if kind is MeetingKind.ASSEMBLY_MOOT:
        with pytest.raises(RuleViolation, match="24 days after planning began"):
            check_date(kind, TRIGGERED, starts, None, RULES, TZ, scheduled_at=scheduled)
        check = check_date(
            kind, TRIGGERED, starts, None, from_scheduling, TZ, scheduled_at=scheduled
        )
        assert (check.days_counted, check.counted_from) == (14, DaysCountedFrom.SCHEDULING)
        assert check.days_after_trigger == 24 and not check.explanation_required
        with pytest.raises(RuleViolation, match="15 days away"):
            check_date(kind, TRIGGERED, at(26), None, from_scheduling, TZ, scheduled_at=scheduled)
    elif kind is MeetingKind.PARTY_CONFERENCE:
        check = check_date(
            kind, TRIGGERED, starts, None, from_scheduling, TZ, scheduled_at=scheduled
        )
        assert check.counted_from is DaysCountedFrom.TRIGGER
    else:
        # A Thing always counts from its trigger: the clause says so.
        with pytest.raises(RuleViolation, match="24 days after planning began"):
            check_date(kind, TRIGGERED, at(25), None, from_scheduling, TZ, scheduled_at=scheduled)


def test_originator_must_be_available():
    check_originator_available(date(2026, 11, 10), {date(2026, 11, 11)})
    with pytest.raises(RuleViolation, match="originator"):
        check_originator_available(date(2026, 11, 11), {date(2026, 11, 11)})


@pytest.mark.parametrize(
    "bad", [("2026-13-01", "10:00"), ("tomorrow", "10:00"), ("2026-11-30", "25:00"), ("", "")]
)
def test_bad_dates_are_input_errors(bad):
    with pytest.raises(InvalidInput) as caught:
        parse_local_datetime(*bad, TZ)
    assert "YYYY-MM-DD HH:MM" in str(caught.value.message)


def test_times_that_do_not_exist_are_refused():
    # 29 March 2026: clocks in London go from 01:00 GMT to 02:00 BST.
    with pytest.raises(InvalidInput, match="does not exist"):
        parse_local_datetime("2026-03-29", "01:30", TZ)
    assert parse_local_datetime("2026-03-29", "02:30", TZ).utcoffset().seconds == 3600
    # 25 October 2026: 01:30 happens twice; the first (BST) is taken.
    assert parse_local_datetime("2026-10-25", "01:30", TZ).utcoffset().seconds == 3600


@given(
    triggered=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(["Europe/London", "Asia/Tokyo", "America/Los_Angeles", "UTC"]),
    kind=st.sampled_from([MeetingKind.THING_OF_ASSEMBLIES, MeetingKind.PARTY_THING]),
    limit=st.integers(min_value=1, max_value=60),
)
def test_the_last_day_is_the_last_one_check_date_accepts(triggered, zone, kind, limit):
    """What a petition's room is told ("must be held by") is what scheduling enforces:
    any time on the last day needs no reason, any time on the next day does."""
    rules = Rules(thing_date_limit_days=limit)
    day = last_day(kind, triggered, rules, zone)
    assert day is not None
    for on, hour, needs_reason in ((day, 23, False), (day + timedelta(days=1), 0, True)):
        starts = datetime.combine(on, time(hour, 30), tzinfo=ZoneInfo(zone))
        if starts <= triggered:
            continue
        if needs_reason:
            with pytest.raises(RuleViolation):
                check_date(kind, triggered, starts, None, rules, zone, scheduled_at=triggered)
        else:
            check_date(kind, triggered, starts, None, rules, zone, scheduled_at=triggered)


def test_no_last_day_without_a_limit_counted_from_the_trigger():
    assert last_day(MeetingKind.PARTY_CONFERENCE, TRIGGERED, RULES, TZ) is None
    from_scheduling = Rules(moot_days_counted_from=DaysCountedFrom.SCHEDULING)
    assert last_day(MeetingKind.ASSEMBLY_MOOT, TRIGGERED, from_scheduling, TZ) is None
    assert last_day(MeetingKind.ASSEMBLY_MOOT, TRIGGERED, RULES, TZ) == date(2026, 11, 15)
    assert last_day(MeetingKind.PARTY_THING, TRIGGERED, RULES, TZ) == date(2026, 11, 22)
