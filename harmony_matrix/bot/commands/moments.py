"""Times as secretaries type them: a meeting's date and time, and how long a ballot stays
open.

A date and time is local to the party (``[party] timezone``, Europe/London): a
secretary writes 19:00 for seven in the evening on that day, summer or winter. Times
that do not exist (the hour the clocks go forward) or happen twice (the hour they go
back) are refused rather than moved, so nobody turns up an hour early or late.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import _

_DATE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_TIME = re.compile(r"([0-9]{1,2})[:.h]([0-9]{2})", re.IGNORECASE)
#: "90m", "36h", "2d", "1d12h", "1d 12h 30m": days, hours and minutes, largest first.
_DURATION = re.compile(r"(?:([0-9]+)\s*d)?\s*(?:([0-9]+)\s*h)?\s*(?:([0-9]+)\s*m)?", re.IGNORECASE)
#: The longest a ballot may stay open: longer is surely a typing mistake.
LONGEST_BALLOT = timedelta(days=60)


def parse_date(text: str) -> date:
    """A calendar date written YYYY-MM-DD."""
    match = _DATE.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(
            _(
                "“%(value)s” is not a date. Write the date as YYYY-MM-DD, for example 2026-12-01.",
                value=text,
            )
        )
    year, month, day = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError as error:
        raise InvalidInput(
            _(
                "“%(value)s” is not a day of the calendar: check the month and the day.",
                value=text,
            )
        ) from error


def parse_time(text: str) -> time:
    """A time of day on the 24-hour clock, written HH:MM (19:30; 19.30 and 19h30 too)."""
    match = _TIME.fullmatch(text.strip())
    hour, minute = (int(part) for part in match.groups()) if match else (-1, -1)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise InvalidInput(
            _(
                "“%(value)s” is not a time. Write the time as HH:MM on the 24-hour clock, "
                "for example 19:30.",
                value=text,
            )
        )
    return time(hour, minute)


def local_moment(day: date, at: time, timezone: str) -> datetime:
    """The moment ``at`` o'clock on ``day`` in the party's timezone.

    Refused when that local time does not exist or happens twice on that day.
    """
    zone = ZoneInfo(timezone)
    moment = datetime.combine(day, at, tzinfo=zone)
    written = f"{day.isoformat()} {at.strftime('%H:%M')}"
    round_trip = moment.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != moment.replace(tzinfo=None):
        raise InvalidInput(
            _(
                "%(value)s does not exist in %(zone)s: the clocks go forward then. Choose "
                "another time.",
                value=written,
                zone=timezone,
            )
        )
    if moment.utcoffset() != moment.replace(fold=1).utcoffset():
        raise InvalidInput(
            _(
                "%(value)s happens twice in %(zone)s: the clocks go back then. Choose "
                "another time.",
                value=written,
                zone=timezone,
            )
        )
    return moment


def parse_duration(text: str) -> timedelta:
    """How long something lasts: "90m", "36h", "2d", "1d12h" (days, hours, minutes).

    Refused: anything else, no time at all, and more than :data:`LONGEST_BALLOT`.
    """
    typed = text.strip()
    if typed.startswith(("-", "−")):
        raise InvalidInput(_("The ballot must stay open for some time: give more than 0."))
    match = _DURATION.fullmatch(typed)
    if not typed or match is None or not any(match.groups()):
        raise InvalidInput(
            _(
                "“%(value)s” is not a length of time. Write a number of days (d), hours (h) "
                "or minutes (m), for example 90m, 36h, 2d or 1d12h.",
                value=text,
            )
        )
    days, hours, minutes = (int(part) if part else 0 for part in match.groups())
    # Added up as whole minutes first: a huge number would overflow timedelta.
    total = (days * 24 + hours) * 60 + minutes
    if total <= 0:
        raise InvalidInput(_("The ballot must stay open for some time: give more than 0."))
    if total > LONGEST_BALLOT // timedelta(minutes=1):
        raise InvalidInput(
            _(
                "A ballot can stay open for at most %(days)s days; “%(value)s” is longer.",
                days=LONGEST_BALLOT.days,
                value=text,
            )
        )
    return timedelta(minutes=total)
