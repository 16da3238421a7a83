"""Voting rights: who may cast a ballot in a round."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.scheduling import kind_name
from harmony_matrix.i18n import _, member_words
from harmony_matrix.services.lookup import meeting_ref
from harmony_matrix.services.records import direct_message
from harmony_matrix.storage.models import (
    BallotRound,
    BallotRoundStatus,
    Meeting,
    Person,
    VotingRight,
)


async def current_round(
    session: AsyncSession, meeting: Meeting, *, lock: bool = False
) -> BallotRound | None:
    """The ballot round of the meeting's current vote, open or closed, if it has one."""
    query = select(BallotRound).where(
        BallotRound.meeting_id == meeting.id, BallotRound.number == meeting.vote_round
    )
    return await session.scalar(query.with_for_update() if lock else query)


async def open_round(session: AsyncSession, meeting: Meeting) -> BallotRound | None:
    """The meeting's ballot round that is open now, if any."""
    round_ = await current_round(session, meeting)
    return round_ if round_ is not None and round_.status is BallotRoundStatus.OPEN else None


async def grant_right(
    session: AsyncSession,
    now: datetime,
    meeting: Meeting,
    round_: BallotRound,
    voter: Person,
) -> None:
    """Give a present, non-suspended person a right and queue their ballot message."""
    existing = await session.scalar(
        select(VotingRight.id).where(
            VotingRight.round_id == round_.id, VotingRight.person_id == voter.id
        )
    )
    if existing is not None:
        return
    right = VotingRight(round_id=round_.id, person_id=voter.id, token_hash=None)
    session.add(right)
    await session.flush()
    await direct_message(
        session,
        now,
        voter,
        message=_(
            "The secret ballot of %(kind)s %(ref)s is open: %(question)s\n"
            "Give every option a score from 0 (worst) to 5 (best). The two options with "
            "the highest total scores go to a final round. The one that more people "
            "scored higher wins. Harmony keeps only your scores, never your name. Your own "
            "link is below. It works once, until the ballot closes. Keep this message and "
            "do not share it. If you get this message twice, use the link in the latest "
            "one.",
            kind=kind_name(meeting.kind),
            ref=meeting_ref(meeting.id),
            question=member_words(meeting.question),
        ),
        dedupe_key=f"ballot:{round_.id}:{voter.id}",
        voting_right_id=right.id,
    )
