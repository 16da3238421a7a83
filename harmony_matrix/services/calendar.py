"""A meeting as a calendar file (.ics), sent with every notice.

Members add it to their calendar in one tap, so the time they see is the party's
(Europe/London, with its summer time) whatever their own timezone. A later notice
sends the same event again with a higher ``SEQUENCE``: calendar apps replace the old
entry instead of adding a second one.
"""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from harmony_matrix.constitution.scheduling import kind_name
from harmony_matrix.i18n import Message, _, join
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import meeting_ref
from harmony_matrix.services.whereabouts import whereabouts
from harmony_matrix.storage.models import Meeting

#: How long the calendar entry lasts. The constitution sets no length (a debate
#: "conclude[s] after a reasonable length of time", with no timer), but a calendar needs
#: an end to show the meeting as a block of time; two hours is a usual evening meeting.
MEETING_LENGTH = timedelta(hours=2)

CALENDAR_TYPE = "text/calendar"


def calendar_file_name(meeting: Meeting) -> str:
    """The attachment's file name, which is also the message's body: ``M-12.ics``."""
    return f"{meeting_ref(meeting.id)}.ics"


def event_uid(meeting: Meeting, ctx: ServiceContext) -> str:
    """The same for every notice of a meeting, and unique to this party's meetings."""
    return f"{meeting_ref(meeting.id)}@{ctx.party.reference_prefix.lower()}.harmony"


def meeting_calendar(
    meeting: Meeting, ctx: ServiceContext, *, sequence: int = 0, language: str | None = None
) -> bytes:
    """The meeting as an iCalendar file, its texts in ``language`` (the party's by
    default). ``sequence``: the notice's number, so a new notice updates the entry.

    Only for a meeting with a date: without one there is nothing to put in a calendar.
    """
    if meeting.starts_at is None:
        raise ValueError(f"{meeting_ref(meeting.id)} has no date yet")
    language = language or ctx.party.default_language
    zone = ZoneInfo(ctx.party.timezone)
    starts = meeting.starts_at.astimezone(zone)
    ends = starts + MEETING_LENGTH

    calendar = Calendar()
    calendar.add("prodid", f"-//Harmony//{ctx.party.name}//EN")
    calendar.add("version", "2.0")
    # A file to import, not an invitation to answer (RFC 5546): members are not
    # asked to accept or decline.
    calendar.add("method", "PUBLISH")

    event = Event()
    event.add("uid", event_uid(meeting, ctx))
    event.add("dtstamp", ctx.now())
    event.add("sequence", sequence)
    # Local times with the zone's rules (a VTIMEZONE, added below), not UTC: the entry
    # keeps its wall time if the file is read where summer time falls on other dates.
    event.add("dtstart", starts)
    event.add("dtend", ends)
    event.add("summary", calendar_text(_summary(meeting).render(language)))
    if meeting.place:
        event.add("location", calendar_text(meeting.place))
    if _is_uri(meeting.online_url):
        event.add("url", meeting.online_url)
    event.add("description", calendar_text(_description(meeting).render(language)))
    calendar.add_component(event)
    # Only the years the meeting spans: the zone's rules for 1970-2038 would make the
    # file a hundred lines longer for nothing.
    calendar.add_missing_timezones(
        first_date=date(starts.year, 1, 1), last_date=date(ends.year + 1, 1, 1)
    )
    return bytes(calendar.to_ical())


def calendar_text(text: str) -> str:
    """``text`` as iCalendar can carry it: line breaks as ``\\n``, which icalendar
    writes escaped, and no other control character (RFC 5545 allows none in a text;
    some calendar apps refuse the whole file for one). Commas, semicolons and
    backslashes stay: icalendar escapes them."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in lines if c in "\n\t" or unicodedata.category(c) != "Cc")


def _is_uri(url: str) -> bool:
    """A link a calendar's URL field can hold: one word, no control characters. Any
    other online link is still in the description, as written."""
    return bool(url) and not any(c.isspace() or unicodedata.category(c) == "Cc" for c in url)


def _summary(meeting: Meeting) -> Message:
    return _(
        "%(kind)s %(ref)s: %(question)s",
        kind=kind_name(meeting.kind),
        ref=meeting_ref(meeting.id),
        question=meeting.question,
    )


def _description(meeting: Meeting) -> Message:
    """Everything a member needs to get there, the same lines as the notice."""
    lines: list[Message] = [_("Question: %(question)s", question=meeting.question)]
    lines += whereabouts(meeting)
    if meeting.schedule_explanation:
        lines.append(_("Why it is on this date: %(reason)s", reason=meeting.schedule_explanation))
    return join(lines)
