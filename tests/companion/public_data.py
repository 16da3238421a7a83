"""A party with something on every public page, made through the use cases as people
would: a vote counted (its totals known), a vote still open, meetings in planning,
discussion and debate, a petition, a private assembly's meeting and its decision.

Shared by the page tests (aiohttp client) and the browser tests (``live.run``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harmony_matrix.services import ballots, consensus, debate, meetings, petitions, roll_call
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import meeting_by_ref
from harmony_matrix.storage.models import ConsensusMethod
from tests.ballots.helpers import links_by_person, meeting_at_vote, path_of, voters
from tests.services.helpers import ANA, BRYN, CHLOE, GWEN, MEDIA, prepared_moot

PRIVATE = "policy-society-for-disability"
PRIVATE_QUESTION = "Should the society's budget stay confidential?"
PLANNED_QUESTION = "Should the newsletter have a podcast edition?"
PETITION_TITLE = "Hold a Party Thing on rail fares"

#: Five voters prefer option 2 strongly, four love option 1 but tolerate option 2.
STRONG = {1: 1, 2: 5, 3: 0}
TOLERANT = {1: 5, 2: 4, 3: 0}
TOTALS = {
    "1. Meet monthly": 5 * 1 + 4 * 5,
    "2. Meet every two months": 5 * 5 + 4 * 4,
    "3. Meet yearly": 0,
}
WINNER = "2. Meet every two months"


@dataclass
class PublicParty:
    counted: str = ""
    voting: str = ""
    debating: str = ""
    discussing: str = ""
    planned: str = ""
    private: str = ""
    petition: str = ""
    receipts: list[str] = field(default_factory=list)


async def counted_vote(ctx: ServiceContext) -> tuple[str, list[str]]:
    """A vote of nine, cast and closed: option 2 wins (totals :data:`TOTALS`)."""
    present = await voters(ctx, 9)
    ref = await meeting_at_vote(ctx, present)
    await ballots.open_ballot(ctx, ANA, ref)
    links = await links_by_person(ctx)
    receipts = [
        await ballots.cast_ballot(ctx, path_of(links[who]), STRONG if index < 5 else TOLERANT)
        for index, who in enumerate(present)
    ]
    await ballots.close_ballot(ctx, ANA, ref)
    return ref, receipts


async def open_vote(ctx: ServiceContext) -> str:
    """A vote of nine still open, two ballots cast."""
    present = await voters(ctx, 9)
    ref = await meeting_at_vote(ctx, present)
    await ballots.open_ballot(ctx, ANA, ref)
    links = await links_by_person(ctx)
    for who in present[:2]:
        await ballots.cast_ballot(ctx, path_of(links[who]), {1: 5, 2: 0, 3: 3})
    return ref


async def debating(ctx: ServiceContext) -> str:
    """The Media Working Group debating: two suggestions, three options, two merged."""
    ref = await prepared_moot(ctx)
    await roll_call.open_meeting(ctx, ANA, ref)
    for who in (ANA, CHLOE, GWEN):
        await roll_call.record_attendance(ctx, who, ref)
    first = await debate.add_suggestion(ctx, CHLOE, ref, "Print it in large type")
    second = await debate.add_suggestion(ctx, GWEN, ref, "Send it by email")
    await debate.start_debate(ctx, ANA, ref)
    await debate.add_option(ctx, ANA, ref, "Large print", suggestions=[first])
    await debate.add_option(ctx, ANA, ref, "By email", suggestions=[second])
    await debate.merge_options(ctx, ANA, ref, [1, 2], "Large print, also by email")
    await debate.add_option(ctx, ANA, ref, "No newsletter")
    return ref


async def discussing(ctx: ServiceContext) -> str:
    ref = await prepared_moot(ctx)
    await roll_call.open_meeting(ctx, ANA, ref)
    await debate.add_suggestion(ctx, CHLOE, ref, "Ask the members first")
    return ref


async def private_decision(ctx: ServiceContext) -> str:
    """A Moot of the private society, with a decision in the record of consensus."""
    called = await meetings.call_moot(ctx, ANA, PRIVATE, PRIVATE_QUESTION)
    async with ctx.transaction() as session:
        meeting = await meeting_by_ref(session, called.ref)
        await consensus.append(
            session, meeting, "Keep it confidential", ConsensusMethod.SINGLE_OPTION, None, ctx.now()
        )
    return called.ref


async def public_party(ctx: ServiceContext) -> PublicParty:
    """Everything above, on the demo party (already loaded)."""
    party = PublicParty()
    party.counted, party.receipts = await counted_vote(ctx)
    party.debating = await debating(ctx)
    party.discussing = await discussing(ctx)
    # Last of those that move the clock: its ballot is still open when the pages are read.
    party.voting = await open_vote(ctx)
    party.planned = (await meetings.call_moot(ctx, ANA, MEDIA, PLANNED_QUESTION)).ref
    party.private = await private_decision(ctx)
    started = await petitions.start_petition(ctx, CHLOE, PETITION_TITLE)
    await petitions.sign_petition(ctx, BRYN, started.ref)
    party.petition = started.ref
    return party
