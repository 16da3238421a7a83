"""A meeting of the Operational Working Group brought to its vote, for ballot tests."""

from __future__ import annotations

from sqlalchemy import select

from harmony_matrix.services import ballot_delivery, debate, roll_call
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import OutboxMessage, Person
from tests.services.helpers import ANA, IRIS, JON, OWG, prepared_moot

OPTIONS = ("Meet monthly", "Meet every two months", "Meet yearly")


async def voters(ctx: ServiceContext, how_many: int) -> list[str]:
    """The first people of the register who are not suspended (Ana first)."""
    async with ctx.transaction() as session:
        people = await session.scalars(select(Person.matrix_id).order_by(Person.id))
        return [p for p in people if p not in (IRIS, JON)][:how_many]


async def meeting_at_vote(ctx: ServiceContext, present: list[str]) -> str:
    ref = await prepared_moot(ctx, slug=OWG)
    await roll_call.open_meeting(ctx, ANA, ref)
    for who in present:
        await roll_call.record_attendance(ctx, who, ref)
    await debate.start_debate(ctx, ANA, ref)
    for text in OPTIONS:
        await debate.add_option(ctx, ANA, ref, text)
    await debate.end_debate(ctx, ANA, ref)
    return ref


async def links_by_person(ctx: ServiceContext) -> dict[str, str]:
    """Deliver the queued ballot messages as the bot will: take the text with its freshly
    minted link, "send" it, and confirm it (which makes the link the right's one link)."""
    async with ctx.transaction() as session:
        queued = list(
            await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.voting_right_id.is_not(None), OutboxMessage.sent_at.is_(None)
                )
            )
        )
    links = {}
    for message in queued:
        prepared = await ballot_delivery.prepare_ballot_message(ctx, message.id)
        links[message.destination] = link_in(prepared.body)
        assert await ballot_delivery.confirm_ballot_message(ctx, prepared)
    return links


def link_in(body: str) -> str:
    return next(line for line in body.split("\n") if "/vote/" in line)


def path_of(url: str) -> str:
    return url.rsplit("/vote/", 1)[1]


deliver_links = links_by_person


def token_of(url: str) -> str:
    """The secret token inside a link: ``.../vote/ROUND.TOKEN.EXPIRES.SIGNATURE``."""
    return path_of(url).split(".")[1]
