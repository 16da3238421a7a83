"""The whole record as one JSON document, for backups and moving servers.

``export_record`` reads every table of the record in one snapshot; ``import_record``
writes such a document into an empty database in one transaction. Exporting, importing
into an empty database and exporting again gives the same document (but for its time).

What is never exported: anything that could link a person to a ballot or let someone
vote (voting rights' token hashes, spent tokens, sealed ballots, round keys), the bot's
Matrix session (sync position, state, direct rooms, handled events, its outbox) and
one-time sign-in links. An open round is all secrets, so nothing is exported while one is
open: the operator closes it first.
"""

from __future__ import annotations

import base64
import enum
import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Date, Enum, Integer, LargeBinary, Table, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from harmony_matrix.errors import InvalidInput, RuleViolation
from harmony_matrix.i18n import _
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.services.lookup import meeting_ref
from harmony_matrix.storage.models import BallotRound, BallotRoundStatus, Base
from harmony_matrix.storage.types import UTCDateTime

FORMAT = "harmony-export"
VERSION = 1


@dataclass(frozen=True)
class Included:
    """A table in the export, less the columns that must never leave the server."""

    name: str
    omit: tuple[str, ...] = ()


#: Every model table is in exactly one of these two lists (tests/services/test_export.py
#: fails otherwise): a new table must be classified before it can be exported.
INCLUDED: tuple[Included, ...] = (
    Included("people"),
    Included("assemblies"),
    Included("remits"),
    Included("assembly_memberships"),
    # The quorum counts who was active lately: part of the record.
    Included("assembly_activity"),
    Included("offices"),
    Included("unavailability"),
    Included("petitions"),
    Included("signatures"),
    Included("meetings"),
    Included("meeting_assemblies"),
    Included("thing_agreements"),
    Included("remit_declines"),
    Included("preparation_records"),
    Included("attendance"),
    Included("suggestions"),
    Included("options"),
    Included("option_suggestions"),
    # Only closed rounds exist at export time. The public key is a round key: dropped
    # (a closed round never needs it again; paper rounds have none either).
    Included("ballot_rounds", omit=("seal_key",)),
    # Who had a right to vote in a closed round (the turnout's "eligible"), never the
    # hash of the token in their link.
    Included("voting_rights", omit=("token_hash",)),
    # The published ballots: a random id, the receipt and the scores, no person.
    Included("counted_ballots"),
    Included("consensus_records"),
    Included("audit_events"),
)

EXCLUDED: Mapping[str, str] = {
    "spent_tokens": "hashes of used ballot tokens; only exist while a round is open",
    "sealed_ballots": "ballots of an open round, sealed to a key that stays on the server",
    "outbox": "the bot's delivery queue, tied to its Matrix session; ballot and sign-in "
    "messages refer to rights whose links are minted when sent",
    "paper_sign_ins": "one-time sign-in links (token hashes) to the paper-ballot page",
    "handled_events": "the bot's memory of Matrix events it acted on (its session)",
    "direct_rooms": "the bot's direct-message rooms on its homeserver (its session)",
    "matrix_state": "the bot's Matrix facts: sync position, Space, pinned events",
}


@dataclass(frozen=True)
class ImportSummary:
    #: Rows written, by table, in the order they were written.
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _tables() -> list[tuple[Table, Included]]:
    """The included tables in an order that satisfies their foreign keys."""
    wanted = {item.name: item for item in INCLUDED}
    return [
        (table, wanted[table.name]) for table in Base.metadata.sorted_tables if table.name in wanted
    ]


def _columns(table: Table, spec: Included) -> list[Any]:
    return [column for column in table.columns if column.name not in spec.omit]


def _to_json(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, enum.Enum):
        return value.value  # as stored
    if isinstance(value, str | int | float | bool | list | dict) or value is None:
        return value
    return str(value)


def _from_json(column: Any, value: object) -> object:
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, UTCDateTime):
        moment = datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            raise ValueError("a time without its UTC offset")
        return moment
    if isinstance(kind, Date):
        return date.fromisoformat(str(value))
    if isinstance(kind, Enum) and kind.enum_class is not None:
        return kind.enum_class(value)
    if isinstance(kind, LargeBinary):
        return base64.b64decode(str(value), validate=True)
    if isinstance(kind, Boolean):
        if not isinstance(value, bool):
            raise ValueError("not true or false")
        return value
    if isinstance(kind, Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("not a whole number")
        return value
    return value


async def _snapshot(ctx: ServiceContext) -> Any:
    """A connection that reads one consistent state of the database."""
    connection = await ctx.engine.connect()
    if ctx.engine.dialect.name == "postgresql":
        connection = await connection.execution_options(isolation_level="REPEATABLE READ")
    return connection


async def export_record(ctx: ServiceContext) -> dict[str, Any]:
    """The whole record as plain JSON values, rows ordered by primary key."""
    connection = await _snapshot(ctx)
    try:
        async with connection.begin():
            open_round = await connection.execute(
                select(BallotRound.meeting_id, BallotRound.number)
                .where(BallotRound.status == BallotRoundStatus.OPEN)
                .order_by(BallotRound.id)
                .limit(1)
            )
            found = open_round.first()
            if found is not None:
                raise RuleViolation(
                    _(
                        "A ballot is open in %(ref)s (round %(round)s). Its sealed ballots "
                        "and key never leave this server: close the ballot first, then "
                        "export.",
                        ref=meeting_ref(found.meeting_id),
                        round=found.number,
                    )
                )
            revision = await connection.run_sync(_current_revision)
            tables: dict[str, list[dict[str, object]]] = {}
            for table, spec in _tables():
                columns = _columns(table, spec)
                result = await connection.execute(
                    select(*columns).order_by(*table.primary_key.columns)
                )
                tables[table.name] = [
                    {name: _to_json(value) for name, value in row._mapping.items()}
                    for row in result
                ]
    finally:
        await connection.close()
    return {
        "format": FORMAT,
        "version": VERSION,
        "schema": revision,
        "exported_at": ctx.now().isoformat(),
        "tables": tables,
    }


def dumps(document: Mapping[str, Any]) -> str:
    """The document as text: the same record always gives the same text."""
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


def _current_revision(connection: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def import_record(ctx: ServiceContext, data: object) -> ImportSummary:
    """Write an export into this empty database, all of it or nothing."""
    tables, schema = check_document(data)
    async with ctx.engine.connect() as connection, connection.begin():
        ours = await connection.run_sync(_current_revision)
        if ours != schema:
            raise RuleViolation(
                _(
                    "The export was made at schema revision %(theirs)s and this database "
                    "is at %(ours)s. Import it into a database at the same revision (with "
                    "the version of Harmony that made it), then upgrade.",
                    theirs=schema,
                    ours=ours or "-",
                )
            )
        await _refuse_non_empty(connection)
        summary = ImportSummary()
        self_references: list[tuple[Table, dict[str, object], dict[str, object]]] = []
        for table, spec in _tables():
            rows = [_row(table, spec, raw, number) for number, raw in enumerate(tables[table.name])]
            # A row may point at a later row of its own table (an option merged into a
            # newer one): written empty first, filled in once every row exists.
            later = [
                column.name
                for column in table.columns
                if column.nullable and any(key.column.table is table for key in column.foreign_keys)
            ]
            for row in rows:
                pending = {name: row[name] for name in later if row.get(name) is not None}
                if pending:
                    key = {column.name: row[column.name] for column in table.primary_key}
                    self_references.append((table, key, pending))
                    row.update(dict.fromkeys(pending))
            if rows:
                await _write(connection, table.insert(), rows)
            summary.rows[table.name] = len(rows)
        for table, key, pending in self_references:
            condition = [table.c[name] == value for name, value in key.items()]
            await _write(connection, table.update().where(*condition).values(pending), None)
        await _reset_sequences(connection)
    return summary


def check_document(data: object) -> tuple[dict[str, list[Any]], str]:
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("tables"), dict)
    ):
        raise InvalidInput(_("This is not a Harmony export (no “format”: “harmony-export”)."))
    if data.get("version") != VERSION:
        raise InvalidInput(
            _(
                "This export is in version %(theirs)s of the format; this Harmony reads "
                "version %(ours)s.",
                theirs=str(data.get("version")),
                ours=VERSION,
            )
        )
    tables = data["tables"]
    expected = {item.name for item in INCLUDED}
    unknown = sorted(set(tables) - expected)
    missing = sorted(expected - set(tables))
    if unknown or missing:
        raise InvalidInput(
            _(
                "The export's tables do not match this Harmony's (unknown: %(unknown)s; "
                "missing: %(missing)s).",
                unknown=", ".join(unknown) or "-",
                missing=", ".join(missing) or "-",
            )
        )
    for name, rows in tables.items():
        if not isinstance(rows, list):
            raise InvalidInput(_("The table %(table)s is not a list of rows.", table=name))
    return tables, str(data.get("schema"))


def _row(table: Table, spec: Included, raw: object, number: int) -> dict[str, object]:
    columns = {column.name: column for column in _columns(table, spec)}
    if not isinstance(raw, dict) or set(raw) != set(columns):
        raise InvalidInput(
            _(
                "Row %(number)s of %(table)s does not have the columns %(columns)s.",
                number=number + 1,
                table=table.name,
                columns=", ".join(columns),
            )
        )
    try:
        return {name: _from_json(columns[name], value) for name, value in raw.items()}
    except (ValueError, TypeError) as error:
        raise InvalidInput(
            _(
                "Row %(number)s of %(table)s has a value that cannot be stored: %(reason)s.",
                number=number + 1,
                table=table.name,
                reason=str(error),
            )
        ) from error


async def _write(
    connection: AsyncConnection, statement: Any, rows: list[dict[str, object]] | None
) -> None:
    try:
        if rows is None:
            await connection.execute(statement)
        else:
            await connection.execute(statement, rows)
    except IntegrityError as error:
        raise InvalidInput(
            _(
                "The export contradicts itself (%(reason)s); nothing was imported.",
                reason=str(error.orig).strip().splitlines()[0] if error.orig else "",
            )
        ) from error


async def _refuse_non_empty(connection: AsyncConnection) -> None:
    for table in Base.metadata.sorted_tables:
        if await connection.scalar(select(func.count()).select_from(table)):
            raise RuleViolation(
                _(
                    "The database is not empty (the table %(table)s has rows): an export "
                    "is imported only into a new, empty database. Nothing was imported.",
                    table=table.name,
                )
            )


async def _reset_sequences(connection: AsyncConnection) -> None:
    """PostgreSQL hands out IDs from sequences, which explicit IDs do not move: set each
    to the highest ID imported, so the next row gets the next one. (SQLite uses the
    highest rowid by itself.)"""
    if connection.dialect.name != "postgresql":
        return
    for table, _spec in _tables():
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        name = keys[0].name
        await connection.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{name}'), "
                f"COALESCE(MAX({name}), 1), MAX({name}) IS NOT NULL) FROM {table.name}"
            )
        )


def write_new_file(path: Path, text: str) -> None:
    """Write an export to a new file, readable by its owner alone (it holds personal
    data); an existing file is never replaced."""
    try:
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(text)
    except OSError as error:
        raise InvalidInput(
            _("Cannot write %(path)s: %(reason)s.", path=str(path), reason=error.strerror)
        ) from error


def backup_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database with SQLite's online backup (consistent even while the bot
    and the web write) to a new file, never over an existing one."""
    if target.exists():
        raise InvalidInput(
            _("%(path)s already exists: name a new file for the backup.", path=str(target))
        )
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        # The copy holds personal data: only its owner may read it.
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        # Read-only: a backup never changes the database it copies.
        reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        try:
            writer = sqlite3.connect(partial)
            try:
                reader.backup(writer)
                writer.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                writer.close()
        finally:
            reader.close()
        os.link(partial, target)  # fails if the target appeared meanwhile
    except FileExistsError as error:
        raise InvalidInput(
            _("%(path)s already exists: name a new file for the backup.", path=str(target))
        ) from error
    except (OSError, sqlite3.Error) as error:
        raise InvalidInput(
            _("Cannot write the backup %(path)s: %(reason)s.", path=str(target), reason=error)
        ) from error
    finally:
        partial.unlink(missing_ok=True)
