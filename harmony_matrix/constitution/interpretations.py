"""The readings of the constitution where its text leaves a gap (DESIGN.md section 4)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from fractions import Fraction

from harmony_matrix.i18n import Message, _

FIFTEEN_PERCENT = Fraction(15, 100)
#: The opening margin is "a small margin": at most a day.
MAX_OPENING_MARGIN_MINUTES = 24 * 60


class DaysCountedFrom(enum.StrEnum):
    """Where a Moot's "further than 14 days away" is counted from."""

    #: From when its planning was triggered (the call), as a Thing's 21 days are.
    TRIGGER = "trigger"
    #: From the day the date is set ("away" from today).
    SCHEDULING = "scheduling"


class InvalidRule(ValueError):
    """A ``[rules]`` value the constitution does not allow; names the setting, so the
    configuration can report "Error in configuration at 'rules.<name>'"."""

    def __init__(self, name: str, reason: Message) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


#: Who may call an Assembly Moot (``[rules] moot_called_by``).
MOOT_CALLED_BY_MEMBERS = "members"
MOOT_CALLED_BY_SECRETARIES = "secretaries"


@dataclass(frozen=True)
class Rules:
    """Defaults for every interpretation; the party may change them in ``[rules]``.

    Shares are exact fractions, never floats: 15% of 20 must be exactly 3, not
    3.0000000000000004 rounded up to 4.
    """

    #: A member counts towards an assembly's *active population* if they spoke, attended
    #: or voted in it within this many days. 0 counts every non-suspended member.
    active_days: int = 90
    #: "quorum for the assembly (which is 4 ..."
    small_assembly_quorum: int = 4
    #: "... unless that assembly has a population greater than 30"
    large_assembly_population: int = 30
    #: "at least 15% of the total active population ... which, again, must be at least 15%"
    minimum_quorum_share: Fraction = FIFTEEN_PERCENT
    #: "at least 15% percentage of signatures in petition"
    petition_share: Fraction = FIFTEEN_PERCENT
    #: "the date must not, in the case of a Moot, be further than 14 days away"
    moot_date_limit_days: int = 14
    #: "a Thing (excluding Party Conference) must not ordinarily be further than 21 days"
    thing_date_limit_days: int = 21
    #: A Moot's "further than 14 days away" counts from the call (``trigger``, the
    #: default: the same reading as the Thing's "21 days from the date when its planning
    #: was triggered") or from the day the date is set (``scheduling``). A Thing always
    #: counts from its trigger. See docs/constitution.md.
    moot_days_counted_from: DaysCountedFrom = DaysCountedFrom.TRIGGER
    #: The preparation steps (facts, informing, materials, date) must be recorded before
    #: a meeting is opened. A party that records them elsewhere may turn this off.
    require_preparation: bool = True
    #: "The planned day of the Thing or Moot": a meeting opens (and a continued vote
    #: begins) no earlier than this many minutes before its announced start.
    opening_margin_minutes: int = 30
    #: "Members may call for either kind of decision-making process": any non-suspended
    #: member of an assembly may call its Moot (its secretaries are told and prepare
    #: it); "secretaries" keeps calling to its secretaries and the General Secretary.
    moot_called_by: str = MOOT_CALLED_BY_MEMBERS

    def __post_init__(self) -> None:
        # Each refusal names its setting, so the configuration reports its path.
        if self.minimum_quorum_share < FIFTEEN_PERCENT:
            raise InvalidRule(
                "minimum_quorum_share", _("the minimum quorum share may not be below 15%")
            )
        for name in ("small_assembly_quorum", "large_assembly_population"):
            if getattr(self, name) < 1:
                raise InvalidRule(name, _("must be at least 1"))
        if not 0 < self.petition_share <= 1:
            # A share of 0 would let a single signature call a Thing of the whole party.
            raise InvalidRule("petition_share", _("must be above 0 and at most 100%"))
        for name in ("active_days", "moot_date_limit_days", "thing_date_limit_days"):
            if getattr(self, name) < 0:
                raise InvalidRule(name, _("a number of days may not be negative"))
        if not 0 <= self.opening_margin_minutes <= MAX_OPENING_MARGIN_MINUTES:
            raise InvalidRule(
                "opening_margin_minutes",
                _(
                    "must be from 0 to %(limit)s minutes (a day)",
                    limit=MAX_OPENING_MARGIN_MINUTES,
                ),
            )
        try:
            counted_from = DaysCountedFrom(self.moot_days_counted_from)
        except ValueError as error:
            raise InvalidRule(
                "moot_days_counted_from",
                _(
                    "must be one of: %(values)s",
                    values=", ".join(value.value for value in DaysCountedFrom),
                ),
            ) from error
        object.__setattr__(self, "moot_days_counted_from", counted_from)
        if self.moot_called_by not in (MOOT_CALLED_BY_MEMBERS, MOOT_CALLED_BY_SECRETARIES):
            raise InvalidRule(
                "moot_called_by",
                _(
                    "must be one of: %(values)s",
                    values=f"{MOOT_CALLED_BY_MEMBERS}, {MOOT_CALLED_BY_SECRETARIES}",
                ),
            )
