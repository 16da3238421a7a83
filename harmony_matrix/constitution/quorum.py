"""Quorum of an Assembly Moot and of a Thing of Assemblies."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from fractions import Fraction

from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.errors import RuleViolation
from harmony_matrix.i18n import Message, _, _n


@dataclass(frozen=True)
class Quorum:
    """How many present members an assembly needs, and why."""

    needed: int
    active_population: int
    basis: Message
    #: False when the assembly has fewer active members than the quorum needs.
    reachable: bool

    def reached_by(self, present: int) -> bool:
        return present >= self.needed


def validate_own_quorum(share: Fraction, rules: Rules) -> None:
    """An assembly's own quorum "must be at least 15%" (and cannot exceed everyone)."""
    if share < rules.minimum_quorum_share or share > 1:
        raise RuleViolation(
            _(
                "An assembly's own quorum must be between %(minimum)s%% and 100%% of its "
                "active members; %(given)s%% is not allowed.",
                minimum=_percent(rules.minimum_quorum_share),
                given=_percent(share),
            )
        )


def moot_quorum(active_population: int, own_share: Fraction | None, rules: Rules) -> Quorum:
    """Quorum of an Assembly Moot.

    Clause: "any gathering which obtains quorum for the assembly (which is 4, unless that
    assembly has a population greater than 30, in which case quorum is either at least
    15% of the total active population or whatever quorum has been established by that
    assembly - which, again, must be at least 15%) shall be considered a Moot".

    Interpretation 2: up to 30 active members the quorum is 4; above 30 it is the
    assembly's own share if it set one, else 15%, of the active population, rounded up.
    An own share below the party's configured minimum (which may be raised above 15%)
    gives way to that minimum rather than leaving the assembly without a quorum.
    """
    if active_population < 0:
        raise ValueError("active population cannot be negative")
    if active_population <= rules.large_assembly_population:
        needed = rules.small_assembly_quorum
        basis = _n(
            "Quorum is %(needed)s because the assembly has %(count)s active member "
            "(%(limit)s or fewer).",
            "Quorum is %(needed)s because the assembly has %(count)s active members "
            "(%(limit)s or fewer).",
            active_population,
            needed=needed,
            limit=rules.large_assembly_population,
        )
    else:
        if own_share is not None and own_share > 1:
            validate_own_quorum(own_share, rules)
        share = max(own_share or rules.minimum_quorum_share, rules.minimum_quorum_share)
        needed = math.ceil(share * active_population)
        if own_share is None or share != own_share:
            # Above 30 active members: the plural form is always needed, but languages
            # such as Polish and Arabic choose it by the number.
            basis = _n(
                "Quorum is %(needed)s: %(share)s%% of %(count)s active member, rounded up.",
                "Quorum is %(needed)s: %(share)s%% of %(count)s active members, rounded up.",
                active_population,
                needed=needed,
                share=_percent(share),
            )
        else:
            basis = _n(
                "Quorum is %(needed)s: the assembly's own quorum of %(share)s%% of "
                "%(count)s active member, rounded up.",
                "Quorum is %(needed)s: the assembly's own quorum of %(share)s%% of "
                "%(count)s active members, rounded up.",
                active_population,
                needed=needed,
                share=_percent(share),
            )
    return Quorum(
        needed=needed,
        active_population=active_population,
        basis=basis,
        reachable=active_population >= needed,
    )


@dataclass(frozen=True)
class AssemblyPresence:
    """One assembly's quorum and how many of its own members are present."""

    quorum: Quorum
    present: int

    @property
    def reached(self) -> bool:
        return self.quorum.reached_by(self.present)


def count_present_members(attendees: Collection[int], members: Collection[int]) -> int:
    """How many attendees are members of the assembly.

    For a Thing, a member of several assemblies is counted for each of them: "even if
    they have members in common and those members are present".
    """
    member_set = set(members)
    return sum(1 for person in set(attendees) if person in member_set)


def thing_quorum_reached(presence: Mapping[str, AssemblyPresence]) -> bool:
    """Quorum of a Thing of Assemblies.

    Clause: "any gathering which obtains quorum for all of the associated Assemblies
    (even if they have members in common and those members are present) shall be
    considered a Thing of Assemblies".
    """
    return bool(presence) and all(item.reached for item in presence.values())


def _percent(share: Fraction) -> str:
    value = share * 100
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
