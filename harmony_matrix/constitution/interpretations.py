"""The readings of the constitution where its text leaves a gap (DESIGN.md section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

FIFTEEN_PERCENT = Fraction(15, 100)

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
    #: The preparation steps (facts, informing, materials, date) must be recorded before
    #: a meeting is opened. A party that records them elsewhere may turn this off.
    require_preparation: bool = True
    #: "Members may call for either kind of decision-making process": any non-suspended
    #: member of an assembly may call its Moot (its secretaries are told and prepare
    #: it); "secretaries" keeps calling to its secretaries and the General Secretary.
    moot_called_by: str = MOOT_CALLED_BY_MEMBERS

    def __post_init__(self) -> None:
        # Config validation reports these with their config path; this guards direct use.
        if self.minimum_quorum_share < FIFTEEN_PERCENT:
            raise ValueError("the minimum quorum share may not be below 15%")
        for name in ("small_assembly_quorum", "large_assembly_population"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 < self.petition_share <= 1:
            raise ValueError("petition_share must be above 0 and at most 1")
        if self.active_days < 0 or self.moot_date_limit_days < 0 or self.thing_date_limit_days < 0:
            raise ValueError("day counts may not be negative")
        if self.moot_called_by not in (MOOT_CALLED_BY_MEMBERS, MOOT_CALLED_BY_SECRETARIES):
            raise ValueError('moot_called_by must be "members" or "secretaries"')
