"""When a Moot or Thing may be held."""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.errors import InvalidInput, RuleViolation
from harmony_matrix.i18n import Message, _, _n, join


class MeetingKind(enum.StrEnum):
    ASSEMBLY_MOOT = "assembly_moot"
    THING_OF_ASSEMBLIES = "thing_of_assemblies"
    PARTY_THING = "party_thing"
    PARTY_CONFERENCE = "party_conference"


def kind_name(kind: MeetingKind) -> Message:
    return {
        MeetingKind.ASSEMBLY_MOOT: _("Assembly Moot"),
        MeetingKind.THING_OF_ASSEMBLIES: _("Thing of Assemblies"),
        MeetingKind.PARTY_THING: _("Party Thing"),
        MeetingKind.PARTY_CONFERENCE: _("Party Conference"),
    }[kind]


def date_limit_days(kind: MeetingKind, rules: Rules) -> int | None:
    """The most days a meeting may be set after planning was triggered; None if exempt.

    Clauses: "the date must not, in the case of a Moot, be further than 14 days away
    without express explanation of reasoning to the Assembly membership, and a Thing
    (excluding Party Conference) must not ordinarily be further than 21 days from the
    date when its planning was triggered, and if so planned, there must be express
    explanation of the reasoning to the Membership."
    """
    if kind is MeetingKind.ASSEMBLY_MOOT:
        return rules.moot_date_limit_days
    if kind is MeetingKind.PARTY_CONFERENCE:
        return None
    return rules.thing_date_limit_days


@dataclass(frozen=True)
class DateCheck:
    days_after_trigger: int
    limit_days: int | None
    #: True when the date is beyond the limit: the explanation must be published.
    explanation_required: bool


def check_date(
    kind: MeetingKind,
    triggered_at: datetime,
    starts_at: datetime,
    explanation: str | None,
    rules: Rules,
    timezone: str,
) -> DateCheck:
    """Check a proposed date against the limit for the kind of meeting.

    Interpretation 5: days are counted between calendar dates in the party's timezone,
    so a Moot triggered on the 1st may be held at any time on the 15th. Going beyond the
    limit is allowed only with a written explanation, which is published.
    """
    if starts_at.tzinfo is None or triggered_at.tzinfo is None:
        raise ValueError("dates must carry a timezone")
    if starts_at <= triggered_at:
        raise RuleViolation(_("The meeting must be after its planning was triggered."))
    zone = ZoneInfo(timezone)
    days = (starts_at.astimezone(zone).date() - triggered_at.astimezone(zone).date()).days
    limit = date_limit_days(kind, rules)
    beyond = limit is not None and days > limit
    if beyond and not (explanation and explanation.strip()):
        raise RuleViolation(
            join(
                [
                    _n(
                        "This date is %(count)s day after planning began.",
                        "This date is %(count)s days after planning began.",
                        days,
                    ),
                    _n(
                        "The limit is %(count)s day.",
                        "The limit is %(count)s days.",
                        limit or 0,
                    ),
                    _(
                        "Choose an earlier date, or give the reason with --reason; the "
                        "reason is published to everyone eligible."
                    ),
                ],
                separator=" ",
            )
        )
    return DateCheck(days_after_trigger=days, limit_days=limit, explanation_required=beyond)


def check_originator_available(day: date, unavailable_days: Collection[date]) -> None:
    """The petition's originator must be able to attend.

    Clause: "The originator of any petition must be present; as such, the Secretary
    responsible for arranging the Moot ... must take this into account when setting a
    date".
    """
    if day in unavailable_days:
        raise RuleViolation(
            _(
                "The originator of the petition has said they cannot attend on %(day)s, "
                "and they must be present. Choose another date.",
                day=day.isoformat(),
            )
        )


def parse_local_datetime(text_date: str, text_time: str, timezone: str) -> datetime:
    """Parse "YYYY-MM-DD" and "HH:MM" typed by a secretary, in the party's timezone."""
    try:
        naive = datetime.strptime(f"{text_date} {text_time}", "%Y-%m-%d %H:%M")
    except ValueError as error:
        raise InvalidInput(
            _(
                "“%(value)s” is not a date and time. Write them as YYYY-MM-DD HH:MM, "
                "for example 2026-12-01 19:30.",
                value=f"{text_date} {text_time}".strip(),
            )
        ) from error
    local = naive.replace(tzinfo=ZoneInfo(timezone))
    # In the hour the clocks go forward, local times such as 01:30 do not exist; Python
    # would quietly move them. Refuse instead of holding a meeting at a surprise time.
    if local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) != naive:
        raise InvalidInput(
            _(
                "%(value)s does not exist in %(zone)s: the clocks go forward then. "
                "Choose another time.",
                value=f"{text_date} {text_time}",
                zone=timezone,
            )
        )
    return local
