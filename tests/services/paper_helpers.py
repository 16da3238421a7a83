"""Sign-in links to the paper-ballot page, delivered as the bot delivers them."""

from __future__ import annotations

from sqlalchemy import select

from harmony_matrix.services import paper_sign_in
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import OutboxMessage


async def deliver_sign_in_links(ctx: ServiceContext) -> dict[str, str]:
    """Each queued sign-in message's link (the path after ``/paper/``) by recipient, as
    the bot's sender would send them: minted, "sent", confirmed."""
    async with ctx.transaction() as session:
        queued = list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.paper_sign_in_id.is_not(None), OutboxMessage.sent_at.is_(None))
                .order_by(OutboxMessage.id)
            )
        )
    links = {}
    for message in queued:
        prepared = await paper_sign_in.prepare_sign_in_message(ctx, message.id)
        url = prepared.body.rsplit("\n", 1)[1]
        links[message.destination] = url.rsplit(paper_sign_in.PATH, 1)[1]
        assert await paper_sign_in.confirm_sign_in_message(ctx, prepared)
    return links


async def sign_in_link(ctx: ServiceContext, actor: str, ref: str) -> str:
    """A fresh one-time link for ``actor``, an organiser of meeting ``ref``."""
    assert await paper_sign_in.send_sign_in_link(ctx, actor, ref)
    return (await deliver_sign_in_links(ctx))[actor]
