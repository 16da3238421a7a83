"""Who may speak, debate, vote and sign."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from harmony_matrix.errors import NotAllowed
from harmony_matrix.i18n import _


class Status(enum.StrEnum):
    """A person's standing in the party: a full Member or a Participant."""

    MEMBER = "member"
    PARTICIPANT = "participant"


class Act(enum.StrEnum):
    SPEAK = "speak"
    DEBATE = "debate"
    VOTE = "vote"
    SIGN = "sign"


@dataclass(frozen=True)
class Standing:
    """What the rules need to know about a person at one moment."""

    status: Status
    suspended: bool


def is_suspended(
    suspended_from: datetime | None, suspended_until: datetime | None, at: datetime
) -> bool:
    """A suspension runs from its start (inclusive) to its end (exclusive, open if None)."""
    if suspended_from is None:
        return False
    return suspended_from <= at and (suspended_until is None or at < suspended_until)


def check_may(standing: Standing, act: Act) -> None:
    """Refuse a suspended person any act, and a Participant a signature.

    Clauses: "Suspended members are not eligible to speak, debate, or vote at any Thing
    or Moot"; a Party Thing petition is signed by "interested Members (not
    Participants)". Signing is refused to suspended members too (the brief; a signature
    is taking part in the decision to hold a Thing).
    """
    if standing.suspended:
        raise NotAllowed(_("You are suspended, so you cannot speak, debate, vote or sign."))
    if act is Act.SIGN and standing.status is not Status.MEMBER:
        raise NotAllowed(
            _("Only Members can start or sign a petition for a Party Thing, not Participants.")
        )


def may_vote_at_moot(standing: Standing, in_assembly: bool, present: bool) -> bool:
    """Interpretation 3: who may vote at an Assembly Moot.

    Clause: a Moot is the consensus of "an Assembly (being the body of a Working Group or
    Committee, plus any other interested Member participants)", and "All Members who are
    not suspended have the right to participate in all debates and voting".
    Read as: every non-suspended member or participant of the assembly who is present,
    plus any non-suspended Member who is present.
    """
    if standing.suspended or not present:
        return False
    return in_assembly or standing.status is Status.MEMBER
