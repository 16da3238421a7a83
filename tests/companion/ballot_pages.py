"""An open secret ballot with real links, for the ballot-page tests (HTTP and browser)."""

from __future__ import annotations

from dataclasses import dataclass

from harmony_matrix.services import ballots
from harmony_matrix.services.context import ServiceContext
from tests.ballots.helpers import links_by_person, meeting_at_vote, path_of, voters
from tests.services.helpers import ANA


@dataclass
class Ballot:
    ref: str
    #: Signed links (the path segment after /vote/), by voter; Ana's first.
    links: dict[str, str]

    @property
    def link(self) -> str:
        return self.links[ANA]


async def open_round(ctx: ServiceContext, how_many: int = 6) -> Ballot:
    """The OWG's meeting at its vote with ``how_many`` present (six or more is quorate in
    the demo party), its ballot open and every link delivered."""
    present = await voters(ctx, how_many)
    ref = await meeting_at_vote(ctx, present)
    await ballots.open_ballot(ctx, ANA, ref)
    links = await links_by_person(ctx)
    return Ballot(ref, {who: path_of(links[who]) for who in present})
