"""The record of consensus: append-only, each entry chained to the one before by hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage.models import ConsensusMethod, ConsensusRecord, Meeting, Person

GENESIS = "0" * 64
#: An arbitrary constant naming the PostgreSQL advisory lock of the chain.
CHAIN_LOCK = 4_242_001


def record_hash(
    *,
    previous_hash: str,
    meeting_id: int,
    question: str,
    outcome: str,
    method: str,
    assemblies: str,
    recorded_at: datetime,
    recorded_by: int | None,
    party_consensus: bool = False,
) -> str:
    """SHA-256 over a canonical JSON form of the entry and the previous hash.

    ``party_consensus`` is part of the hash only when true: entries written before the
    field existed (all false) keep their hashes, and a true one cannot be made false
    (or the reverse) without breaking the chain.
    """
    fields: dict[str, object] = {
        "previous": previous_hash,
        "meeting": meeting_id,
        "question": question,
        "outcome": outcome,
        "method": method,
        "assemblies": assemblies,
        "recorded_at": recorded_at.isoformat(timespec="microseconds"),
        "recorded_by": recorded_by,
    }
    if party_consensus:
        fields["party_consensus"] = True
    canonical = json.dumps(
        fields,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def append(
    session: AsyncSession,
    meeting: Meeting,
    outcome: str,
    method: ConsensusMethod,
    actor: Person | None,
    at: datetime,
    *,
    party_consensus: bool = False,
) -> ConsensusRecord:
    """Add an entry after the latest one.

    Two writers racing for the same predecessor cannot both succeed: ``previous_hash``
    is unique, so the loser's transaction fails and nothing of it is kept.
    """
    if session.get_bind().dialect.name == "postgresql":
        # One writer at a time extends the chain; SQLite's BEGIN IMMEDIATE does the same.
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})
    latest = await session.scalar(
        select(ConsensusRecord).order_by(ConsensusRecord.id.desc()).limit(1)
    )
    previous = latest.hash if latest else GENESIS
    assemblies = ",".join(sorted(assembly.slug for assembly in meeting.assemblies))
    record = ConsensusRecord(
        meeting_id=meeting.id,
        question=meeting.question,
        outcome=outcome,
        method=method,
        assemblies=assemblies,
        recorded_at=at,
        recorded_by_id=actor.id if actor else None,
        party_consensus=party_consensus,
        previous_hash=previous,
        hash=record_hash(
            previous_hash=previous,
            meeting_id=meeting.id,
            question=meeting.question,
            outcome=outcome,
            method=method.value,
            assemblies=assemblies,
            recorded_at=at,
            recorded_by=actor.id if actor else None,
            party_consensus=party_consensus,
        ),
    )
    session.add(record)
    await session.flush()
    return record


@dataclass(frozen=True)
class ConsensusEntry:
    number: int
    meeting_ref: str
    question: str
    outcome: str
    method: ConsensusMethod
    assemblies: tuple[str, ...]
    recorded_at: datetime
    hash: str
    #: Produced by a Moot of the assembly with primary remit for its topic.
    party_consensus: bool = False


async def list_consensus(
    ctx: ServiceContext, assembly_slug: str | None = None
) -> list[ConsensusEntry]:
    async with ctx.transaction() as session:
        rows = await session.scalars(select(ConsensusRecord).order_by(ConsensusRecord.id))
        entries = [
            ConsensusEntry(
                number=row.id,
                meeting_ref=f"M-{row.meeting_id}",
                question=row.question,
                outcome=row.outcome,
                method=row.method,
                assemblies=tuple(filter(None, row.assemblies.split(","))),
                recorded_at=row.recorded_at,
                hash=row.hash,
                party_consensus=row.party_consensus,
            )
            for row in rows
        ]
    if assembly_slug is None:
        return entries
    return [entry for entry in entries if assembly_slug in entry.assemblies]


async def verify_chain(ctx: ServiceContext) -> int | None:
    """The id of the first entry that does not match its hash or its predecessor, or None."""
    async with ctx.transaction() as session:
        previous = GENESIS
        for row in await session.scalars(select(ConsensusRecord).order_by(ConsensusRecord.id)):
            expected = record_hash(
                previous_hash=previous,
                meeting_id=row.meeting_id,
                question=row.question,
                outcome=row.outcome,
                method=row.method.value,
                assemblies=row.assemblies,
                recorded_at=row.recorded_at,
                recorded_by=row.recorded_by_id,
                party_consensus=row.party_consensus,
            )
            if row.previous_hash != previous or row.hash != expected:
                return row.id
            previous = row.hash
    return None
