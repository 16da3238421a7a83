"""Petitions that call a Party Thing."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harmony_matrix.constitution.interpretations import Rules


def petition_threshold(non_suspended_members: int, rules: Rules) -> int:
    """Signatures a Party Thing petition needs.

    Clause: "interested Members (not Participants) must gather in comparison to the total
    number of the Membership at least 15% percentage of signatures in petition".

    Interpretation 4: 15% of the non-suspended Members, rounded up, counted when the
    petition is opened (a snapshot, so the target does not move while people sign).
    At least one signature is always needed.
    """
    if non_suspended_members < 0:
        raise ValueError("membership cannot be negative")
    return max(1, math.ceil(rules.petition_share * non_suspended_members))


@dataclass(frozen=True)
class PetitionProgress:
    signatures: int
    threshold: int

    @property
    def reached(self) -> bool:
        return self.signatures >= self.threshold

    @property
    def missing(self) -> int:
        return max(0, self.threshold - self.signatures)
