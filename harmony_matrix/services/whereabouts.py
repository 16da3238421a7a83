"""Where a meeting is and how to take part, said the same way everywhere."""

from __future__ import annotations

from harmony_matrix.i18n import Message, _, member_words
from harmony_matrix.storage.models import Meeting


def whereabouts(meeting: Meeting) -> list[Message]:
    """The place, the online link, the access provisions and the help with routes, those
    that are set: as the notice, the calendar file and the reminders all say them."""
    lines: list[Message] = []
    if meeting.place:
        lines.append(_("Where: %(place)s", place=member_words(meeting.place)))
    if meeting.online_url:
        lines.append(_("Online: %(url)s", url=meeting.online_url))
    if meeting.accessibility:
        lines.append(_("Access: %(access)s", access=member_words(meeting.accessibility)))
    if meeting.route_help:
        lines.append(_("Getting there: %(help)s", help=member_words(meeting.route_help)))
    return lines
