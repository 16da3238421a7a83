"""When a Moot or Thing may be held."""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from harmony_matrix.constitution.interpretations import DaysCountedFrom, Rules
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


def kind_explained(kind: MeetingKind) -> Message:
    """What a kind of meeting is, in plain words, for the first message that names it:
    the constitution's terms are explained on first use (GOV.UK style, issue 12)."""
    return {
        MeetingKind.ASSEMBLY_MOOT: _(
            "In an Assembly Moot, a group of the party (an assembly) meets to decide "
            "something. Its members can take part, and so can any other member who wants to."
        ),
        MeetingKind.THING_OF_ASSEMBLIES: _(
            "A Thing of Assemblies is a meeting where several assemblies make a decision together."
        ),
        MeetingKind.PARTY_THING: _(
            "A Party Thing is a meeting where members decide something that no assembly "
            "is in charge of."
        ),
        MeetingKind.PARTY_CONFERENCE: _("A Party Conference is a meeting of the whole party."),
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


def days_counted_from(kind: MeetingKind, rules: Rules) -> DaysCountedFrom:
    """A Thing's limit counts "from the date when its planning was triggered"; a Moot's
    "further than 14 days away" counts as the party chose (``moot_days_counted_from``)."""
    if kind is MeetingKind.ASSEMBLY_MOOT:
        return rules.moot_days_counted_from
    return DaysCountedFrom.TRIGGER


def last_day(kind: MeetingKind, triggered_at: datetime, rules: Rules, timezone: str) -> date | None:
    """The last calendar day (party timezone) the meeting may be held on without a
    published explanation, when its limit counts from the trigger ("a Thing ... must not
    ordinarily be further than 21 days from the date when its planning was triggered");
    None when it has no limit or its limit counts from when the date is set.

    The same count as :func:`check_date`: a Thing triggered on the 1st may be held on
    the 22nd.
    """
    limit = date_limit_days(kind, rules)
    if limit is None or days_counted_from(kind, rules) is not DaysCountedFrom.TRIGGER:
        return None
    if triggered_at.tzinfo is None:
        raise ValueError("dates must carry a timezone")
    return triggered_at.astimezone(ZoneInfo(timezone)).date() + timedelta(days=limit)


@dataclass(frozen=True)
class DateCheck:
    days_after_trigger: int
    limit_days: int | None
    #: True when the date is beyond the limit: the explanation must be published.
    explanation_required: bool
    #: What the limit was counted from, and the days counted (compared with the limit).
    counted_from: DaysCountedFrom
    days_counted: int


def check_date(
    kind: MeetingKind,
    triggered_at: datetime,
    starts_at: datetime,
    explanation: str | None,
    rules: Rules,
    timezone: str,
    *,
    scheduled_at: datetime,
) -> DateCheck:
    """Check a proposed date, set at ``scheduled_at``, against the limit for the kind of
    meeting.

    Interpretation 5: days are counted between calendar dates in the party's timezone,
    so a Moot triggered on the 1st may be held at any time on the 15th. Going beyond the
    limit is allowed only with a written explanation, which is published.
    """
    if starts_at.tzinfo is None or triggered_at.tzinfo is None or scheduled_at.tzinfo is None:
        raise ValueError("dates must carry a timezone")
    if starts_at <= triggered_at:
        raise RuleViolation(_("The meeting must be after its planning was triggered."))
    zone = ZoneInfo(timezone)

    def days_from(moment: datetime) -> int:
        return (starts_at.astimezone(zone).date() - moment.astimezone(zone).date()).days

    counted_from = days_counted_from(kind, rules)
    days_after_trigger = days_from(triggered_at)
    if counted_from is DaysCountedFrom.SCHEDULING:
        days = days_from(scheduled_at)
        how_far = _n("This date is %(count)s day away.", "This date is %(count)s days away.", days)
    else:
        days = days_after_trigger
        how_far = _n(
            "This date is %(count)s day after planning began.",
            "This date is %(count)s days after planning began.",
            days,
        )
    limit = date_limit_days(kind, rules)
    beyond = limit is not None and days > limit
    if beyond and not (explanation and explanation.strip()):
        raise RuleViolation(
            join(
                [
                    how_far,
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
    return DateCheck(
        days_after_trigger=days_after_trigger,
        limit_days=limit,
        explanation_required=beyond,
        counted_from=counted_from,
        days_counted=days,
    )


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
