"""Who leads on a topic now, read from the stored remits and declines (the rule is in
constitution/remit.py). Queries only: the use cases are in ``remits.py``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.remit import (
    RemitLink,
    is_party_consensus,
    lead_for,
    normalise_topic,
)
from harmony_matrix.storage.models import Assembly, Meeting, Remit, RemitDecline


async def remit_links(session: AsyncSession) -> list[RemitLink]:
    rows = await session.scalars(select(Remit).order_by(Remit.id))
    links = []
    for remit in rows:
        lead = await session.get(Assembly, remit.assembly_id)
        fallback = (
            await session.get(Assembly, remit.fallback_assembly_id)
            if remit.fallback_assembly_id is not None
            else None
        )
        assert lead is not None
        links.append(RemitLink(remit.topic, lead.slug, fallback.slug if fallback else None))
    return links


async def known_topic(session: AsyncSession, topic: str) -> str | None:
    """The remit's own spelling of ``topic``, if some assembly has it as a remit."""
    wanted = normalise_topic(topic)
    for link in await remit_links(session):
        if normalise_topic(link.topic) == wanted:
            return link.topic
    return None


async def declined_by(
    session: AsyncSession, topic: str, meeting_id: int | None, at: datetime
) -> set[str]:
    """Slugs of the assemblies that declined the lead on ``topic``: for the topic as a
    whole, or for this meeting."""
    wanted = normalise_topic(topic)
    scope: ColumnElement[bool] = RemitDecline.meeting_id.is_(None)
    if meeting_id is not None:
        scope = or_(scope, RemitDecline.meeting_id == meeting_id)
    rows = await session.execute(
        select(RemitDecline.topic, Assembly.slug)
        .join(Assembly, Assembly.id == RemitDecline.assembly_id)
        .where(scope, RemitDecline.declined_at <= at)
    )
    return {slug for declined_topic, slug in rows if normalise_topic(declined_topic) == wanted}


async def lead_assembly(
    session: AsyncSession, topic: str, at: datetime, meeting_id: int | None = None
) -> Assembly | None:
    """The assembly with primary remit for ``topic`` now, or None."""
    slug = lead_for(
        topic, await remit_links(session), await declined_by(session, topic, meeting_id, at)
    )
    if slug is None:
        return None
    return await session.scalar(select(Assembly).where(Assembly.slug == slug))


async def makes_party_consensus(session: AsyncSession, meeting: Meeting, at: datetime) -> bool:
    """Is this meeting's consensus Party Consensus? A Moot on a topic, of the assembly
    leading on it when the consensus is recorded."""
    if meeting.topic is None:
        return False
    lead = await lead_assembly(session, meeting.topic, at, meeting.id)
    return is_party_consensus(
        meeting.kind,
        [assembly.slug for assembly in meeting.assemblies],
        lead.slug if lead else None,
    )
