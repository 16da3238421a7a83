"""Primary remit: which assembly leads on a topic, and so whose Moot makes Party Consensus.

Clause: "Consensus arising from a Moot may be considered Party Consensus if it is
produced by any Working Group which is considered to have primary remit for that
decision by its purpose. For example, the Disability Activism Society leads on
disability issues in entirety, but if the DAS declines to take the lead on an issue,
the Policy Society for Disability may do so instead."
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from harmony_matrix.constitution.scheduling import MeetingKind


def normalise_topic(topic: str) -> str:
    """Topics match whatever their case and spacing: "Disability" is "disability"."""
    return " ".join(topic.split()).casefold()


@dataclass(frozen=True)
class RemitLink:
    """An assembly leads on a topic; ``fallback`` leads instead if it declines."""

    topic: str
    lead: str
    fallback: str | None = None


def lead_for(topic: str, links: Iterable[RemitLink], declined: Collection[str]) -> str | None:
    """The assembly leading on ``topic``: its lead unless that declined, then the lead's
    fallback unless that declined too, then the fallback's fallback (the fallback that
    assembly names for the same topic), and so on. None when no assembly has the topic,
    or every assembly in the chain declined (the topic is then "not within the remit of
    an existing Assembly"). A chain that comes back to an assembly already passed ends
    there (no one leads): a cycle of fallbacks must not loop or pick at random.
    """
    wanted = normalise_topic(topic)
    chain = {link.lead: link.fallback for link in links if normalise_topic(link.topic) == wanted}
    if not chain:
        return None
    named_as_fallback = {fallback for fallback in chain.values() if fallback is not None}
    # The head of the chain leads first: the one no other assembly falls back from.
    heads = sorted(lead for lead in chain if lead not in named_as_fallback)
    if not heads:
        return None  # every lead is another's fallback: a cycle with no first assembly
    current: str | None = heads[0]
    passed: set[str] = set()
    while current is not None and current in declined:
        passed.add(current)
        current = chain.get(current)
        if current in passed:
            return None
    return current


def is_party_consensus(kind: MeetingKind, assemblies: Collection[str], lead: str | None) -> bool:
    """Consensus of a Moot is Party Consensus when its one assembly leads on its topic.
    Only Moots: the clause speaks of "Consensus arising from a Moot"."""
    return (
        kind is MeetingKind.ASSEMBLY_MOOT
        and lead is not None
        and len(assemblies) == 1
        and lead in assemblies
    )
