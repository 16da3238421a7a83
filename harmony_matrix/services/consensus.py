"""The record of consensus: append-only, each entry chained to the one before by hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from harmony_matrix.constitution.scheduling import MeetingKind
from harmony_matrix.i18n import DEFAULT_LANGUAGE, Message, _, _n, member_words
from harmony_matrix.services.announcements import meeting_destination
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import assembly_by_slug
from harmony_matrix.services.records import enqueue
from harmony_matrix.storage.models import ConsensusMethod, ConsensusRecord, Meeting, Person

GENESIS = "0" * 64
#: An arbitrary constant naming the PostgreSQL advisory lock of the chain.
CHAIN_LOCK = 4_242_001


#: The current form of :func:`entry_hash`. Version 1 (before issue 7) did not cover the
#: entry's number, so renumbering went unseen; its entries stay verifiable, but only at
#: the start of the chain: once a version-2 entry exists, every later one is version 2.
HASH_VERSION = 2


def entry_hash(
    *,
    version: int = HASH_VERSION,
    number: int,
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
    """SHA-256 over a canonical JSON form of the entry, its number and the previous hash.

    Version 2 adds ``"v": 2`` and ``"number"`` (the entry's id, which is its place in the
    chain): renumbering an entry changes its hash. Version 1 is the same without them.

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
    if version >= 2:
        fields |= {"v": version, "number": number}
    if party_consensus:
        fields["party_consensus"] = True
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
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
    language: str = DEFAULT_LANGUAGE,
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
    # The number is the place in the chain, set here under the chain's lock rather than
    # by a sequence (which leaves gaps when a transaction rolls back).
    number = latest.id + 1 if latest else 1
    assemblies = ",".join(sorted(assembly.slug for assembly in meeting.assemblies))
    record = ConsensusRecord(
        id=number,
        meeting_id=meeting.id,
        question=meeting.question,
        outcome=outcome,
        method=method,
        assemblies=assemblies,
        recorded_at=at,
        recorded_by_id=actor.id if actor else None,
        party_consensus=party_consensus,
        previous_hash=previous,
        hash=entry_hash(
            number=number,
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
    await _announce(session, meeting, record, at, language)
    return record


async def _announce(
    session: AsyncSession, meeting: Meeting, record: ConsensusRecord, at: datetime, language: str
) -> None:
    """Publish the new head in the meeting's room, and for a Thing of Assemblies in each
    involved assembly's room too (a Moot's room is its assembly's): anyone who keeps
    the last announcement can later show that entries were removed from the end (the
    chain alone cannot, see :func:`check_chain`)."""
    count = await session.scalar(select(func.count()).select_from(ConsensusRecord)) or 0
    message = _n(
        "Consensus recorded: %(outcome)s. This is now the decision of the meeting. It is "
        "entry %(number)s in the record of consensus, the list of all decisions. The list "
        "now has %(count)s entry. Keep its check code (the head hash). With it, anyone "
        "can check later that no entry was taken away. To check, run: harmony consensus "
        "--verify --expect-head %(hash)s",
        "Consensus recorded: %(outcome)s. This is now the decision of the meeting. It is "
        "entry %(number)s in the record of consensus, the list of all decisions. The list "
        "now has %(count)s entries. Keep its check code (the head hash). With it, anyone "
        "can check later that no entry was taken away. To check, run: harmony consensus "
        "--verify --expect-head %(hash)s",
        count,
        number=record.id,
        outcome=member_words(record.outcome),
        hash=record.hash,
    )
    await enqueue(
        session,
        at,
        destination=meeting_destination(meeting.id),
        is_direct=False,
        message=message,
        language=language,
        dedupe_key=f"consensus:{record.id}:meeting",
    )
    if meeting.kind is not MeetingKind.THING_OF_ASSEMBLIES:
        return
    for assembly in meeting.assemblies:
        if assembly.matrix_room_id:
            await enqueue(
                session,
                at,
                destination=assembly.matrix_room_id,
                is_direct=False,
                message=message,
                language=language,
                dedupe_key=f"consensus:{record.id}:room:{assembly.id}",
            )


@dataclass(frozen=True)
class ConsensusEntry:
    number: int
    meeting_ref: str
    question: str
    outcome: str
    #: The method as stored; a value Harmony does not know is shown as it is.
    method: ConsensusMethod | str
    assemblies: tuple[str, ...]
    #: None when the stored date cannot be read (``--verify`` reports such an entry).
    recorded_at: datetime | None
    hash: str
    #: Produced by a Moot of the assembly with primary remit for its topic.
    party_consensus: bool = False


_COLUMNS = (
    "id, meeting_id, question, outcome, method, assemblies, recorded_at, recorded_by_id, "
    "party_consensus, previous_hash, hash"
)


async def _raw_rows(session: AsyncSession) -> list[Row[Any]]:
    """The entries as stored, without the ORM's conversions: a row someone edited by
    hand (an unknown method, a date that is not one) is reported, never a crash."""
    result = await session.execute(text(f"SELECT {_COLUMNS} FROM consensus_records ORDER BY id"))
    return list(result)


def _method(value: object) -> ConsensusMethod | str:
    try:
        return ConsensusMethod(str(value))
    except ValueError:
        return str(value)


def _moment(value: object) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite hands back text), or None."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def list_consensus(
    ctx: ServiceContext, assembly_slug: str | None = None
) -> list[ConsensusEntry]:
    async with ctx.transaction() as session:
        if assembly_slug is not None:  # a slug, reference or name; else "no such assembly"
            assembly_slug = (await assembly_by_slug(session, assembly_slug)).slug
        rows = await _raw_rows(session)
    entries = [
        ConsensusEntry(
            number=row.id,
            meeting_ref=f"M-{row.meeting_id}",
            question=str(row.question),
            outcome=str(row.outcome),
            method=_method(row.method),
            assemblies=tuple(filter(None, str(row.assemblies or "").split(","))),
            recorded_at=_moment(row.recorded_at),
            hash=str(row.hash),
            party_consensus=bool(row.party_consensus),
        )
        for row in rows
    ]
    if assembly_slug is None:
        return entries
    return [entry for entry in entries if assembly_slug in entry.assemblies]


@dataclass(frozen=True)
class ChainCheck:
    """What ``--verify`` found: the entry count and head hash to compare with a published
    copy, and the first problem (None when the chain is intact)."""

    count: int
    #: The hash of the last entry; :data:`GENESIS` for an empty record.
    head: str
    #: The number of the first broken entry, or None.
    broken: int | None = None
    problem: Message | None = None
    #: The number of the entry whose hash was given as ``expect_head``, when found.
    expected_head_at: int | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


async def check_chain(
    ctx: ServiceContext, *, expect_head: str | None = None, expect_count: int | None = None
) -> ChainCheck:
    """Recompute every hash and link; compare with a published head and count.

    The chain alone proves every entry and its order back to the first, but not that
    none was removed from the end (or that all were): that takes a head hash published
    earlier (``expect_head``, announced in the rooms with each new entry) or an entry
    count (``expect_count``).
    """
    async with ctx.transaction() as session:
        rows = await _raw_rows(session)
    count = len(rows)
    head = str(rows[-1].hash) if rows else GENESIS
    broken: tuple[int, Message] | None = None
    previous, previous_number, legacy_allowed = GENESIS, 0, True
    for row in rows:
        problem, version = _entry_problem(row, previous, previous_number, legacy_allowed)
        if problem is not None:
            broken = (row.id, problem)
            break
        legacy_allowed = legacy_allowed and version == 1
        previous, previous_number = str(row.hash), row.id
    wanted = (expect_head or "").strip().lower()
    found_at = {str(row.hash): row.id for row in rows}.get(wanted) if wanted else None
    if broken is None and wanted and wanted != GENESIS and found_at is None:
        broken = (
            count,
            _(
                "The published head hash %(hash)s is not in the record: entries were "
                "removed from its end, or changed.",
                hash=wanted,
            ),
        )
    if broken is None and expect_count is not None and count < expect_count:
        broken = (
            count,
            _n(
                "The record has %(count)s entry, but the published count is %(expected)s: "
                "entries were removed.",
                "The record has %(count)s entries, but the published count is %(expected)s: "
                "entries were removed.",
                count,
                expected=expect_count,
            ),
        )
    return ChainCheck(
        count=count,
        head=head,
        broken=broken[0] if broken else None,
        problem=broken[1] if broken else None,
        expected_head_at=found_at,
    )


def _entry_problem(
    row: Row[Any], previous: str, previous_number: int, legacy_allowed: bool
) -> tuple[Message | None, int]:
    """What is wrong with one entry (None if nothing) and the hash version it uses."""
    number = row.id
    method = _method(row.method)
    if not isinstance(method, ConsensusMethod):
        return (
            _(
                "Entry %(number)s names an unknown method “%(method)s”.",
                number=number,
                method=method,
            ),
            0,
        )
    moment = _moment(row.recorded_at)
    if moment is None:
        return (
            _(
                "Entry %(number)s has an invalid date: “%(value)s”.",
                number=number,
                value=str(row.recorded_at),
            ),
            0,
        )
    if row.previous_hash != previous:
        return (
            _(
                "Entry %(number)s does not follow the entry before it: an entry was removed, "
                "inserted or reordered.",
                number=number,
            ),
            0,
        )
    fields: dict[str, Any] = {
        "number": number,
        "previous_hash": previous,
        "meeting_id": row.meeting_id,
        "question": row.question,
        "outcome": row.outcome,
        "method": method.value,
        "assemblies": row.assemblies,
        "recorded_at": moment,
        "recorded_by": row.recorded_by_id,
        "party_consensus": bool(row.party_consensus),
    }
    if row.hash == entry_hash(**fields) and number == previous_number + 1:
        return None, HASH_VERSION
    if legacy_allowed and row.hash == entry_hash(version=1, **fields):
        return None, 1
    return (
        _(
            "Entry %(number)s does not match its hash: it was changed or renumbered.",
            number=number,
        ),
        0,
    )


async def verify_chain(ctx: ServiceContext) -> int | None:
    """The number of the first entry that does not match its hash or its predecessor."""
    return (await check_chain(ctx)).broken
