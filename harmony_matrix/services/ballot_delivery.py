"""Delivering ballot links: the link exists in the sender's memory and the member's
message, and nowhere else.

The bot sends a queued ballot message in three steps:

1. ``prepare_ballot_message`` reads the queued text and mints a random token in memory;
   the returned text carries the voter's link, and a fresh Matrix transaction ID (a new
   link is a new message; reusing an ID would make the homeserver return the old event).
   Nothing is written.
2. The bot sends that text with that transaction ID.
3. Once the homeserver has accepted it, ``confirm_ballot_message`` stores the right's
   hash of the token, if the right has none yet, and marks the message sent.

If the sender dies before step 3 commits, the right has no hash: the link it may have
delivered was never valid, and the next attempt sends a new message with a new link
(the first is refused with "use the link in your latest message"). After step 3 the
message is never sent again. A right's hash is written once and never replaced, so a
right has at most one working link, ever. Only one sender may run at a time: two
senders racing would each deliver a link and only the first to confirm would work.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy import update

from harmony_matrix.errors import NotFound, RuleViolation
from harmony_matrix.i18n import _
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import (
    BallotRound,
    BallotRoundStatus,
    OutboxMessage,
    VotingRight,
)
from harmony_matrix.voting.links import BallotLink, new_token, right_hash


@dataclass(frozen=True)
class PreparedBallotMessage:
    outbox_id: int
    destination: str
    #: The text to send, with the link: never log it, never store it.
    body: str = field(repr=False)
    transaction_id: str
    _token_hash: str = field(repr=False)


async def prepare_ballot_message(ctx: ServiceContext, outbox_id: int) -> PreparedBallotMessage:
    """The text of a queued ballot message with a freshly minted link; writes nothing."""
    key = ctx.ballot_key()
    async with ctx.transaction() as session:
        message = await session.get(OutboxMessage, outbox_id)
        if message is None or message.voting_right_id is None:
            raise NotFound(_("There is no such ballot message."))
        right = await session.get(VotingRight, message.voting_right_id)
        assert right is not None
        if message.sent_at is not None or right.token_hash is not None:
            raise RuleViolation(_("This ballot message has already been sent."))
        round_ = await session.get(BallotRound, right.round_id)
        assert round_ is not None
        if round_.status is not BallotRoundStatus.OPEN:
            raise RuleViolation(_("This ballot is closed."))
        token = new_token()
        link = BallotLink(round_.id, token, int(round_.closes_at.timestamp()))
        url = f"{ctx.public_base_url.rstrip('/')}/vote/{link.sign(key)}"
        return PreparedBallotMessage(
            outbox_id=message.id,
            destination=message.destination,
            body=f"{message.body}\n{url}",
            transaction_id=f"harmony-ballot-{message.id}-{secrets.token_hex(8)}",
            _token_hash=right_hash(token),
        )


async def confirm_ballot_message(ctx: ServiceContext, prepared: PreparedBallotMessage) -> bool:
    """Record that the homeserver accepted the message: its link becomes the right's one
    working link. False if another delivery of this message was confirmed first (then
    this message's link does not work)."""
    async with ctx.transaction() as session:
        message = await session.get(OutboxMessage, prepared.outbox_id)
        if message is None or message.voting_right_id is None:
            raise NotFound(_("There is no such ballot message."))
        claimed = await session.execute(
            update(VotingRight)
            .where(VotingRight.id == message.voting_right_id, VotingRight.token_hash.is_(None))
            .values(token_hash=prepared._token_hash)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False
        message.sent_at = ctx.now()
        message.attempts = (message.attempts or 0) + 1
        return True
