"""The whole record out and back in: exact, verifiable, and never a secret."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.errors import InvalidInput, RuleViolation
from harmony_matrix.services import ballots, consensus, debate, export, petitions, roll_call
from harmony_matrix.services.context import ServiceContext
from harmony_matrix.storage import migrations
from harmony_matrix.storage.database import make_engine
from harmony_matrix.storage.models import BallotRound, Base, Option, OutboxMessage, VotingRight
from tests.ballots.helpers import links_by_person, meeting_at_vote, path_of, token_of, voters
from tests.services.helpers import ANA, CHLOE, OWG, prepared_moot, row_counts, signing_members


def test_every_table_is_classified_once():
    included = {item.name for item in export.INCLUDED}
    assert not included & set(export.EXCLUDED)
    assert included | set(export.EXCLUDED) == set(Base.metadata.tables)
    for item in export.INCLUDED:  # an omitted column exists, so the omission means something
        assert set(item.omit) <= set(Base.metadata.tables[item.name].columns.keys())


async def counted_meeting(ctx: ServiceContext) -> tuple[str, dict[str, str]]:
    """A Moot with suggestions, a merge (into a later option) and a counted STAR ballot."""
    present = await voters(ctx, 7)
    ref = await prepared_moot(ctx, slug=OWG)
    await roll_call.open_meeting(ctx, ANA, ref)
    for who in present:
        await roll_call.record_attendance(ctx, who, ref)
    first = await debate.add_suggestion(ctx, ANA, ref, "Monthly, with a digest")
    await debate.add_suggestion(ctx, ANA, ref, "Only online", author=CHLOE)
    await debate.start_debate(ctx, ANA, ref)
    await debate.add_option(ctx, ANA, ref, "Meet monthly", suggestions=[first])
    await debate.add_option(ctx, ANA, ref, "Meet weekly")
    await debate.add_option(ctx, ANA, ref, "Meet yearly")
    await debate.merge_options(ctx, ANA, ref, [2, 3], "Meet when needed")
    await debate.end_debate(ctx, ANA, ref)
    await ballots.open_ballot(ctx, ANA, ref)
    links = await links_by_person(ctx)
    for index, who in enumerate(present):
        scores = {1: 5, 4: 1} if index < 4 else {1: 2, 4: 5}
        await ballots.cast_ballot(ctx, path_of(links[who]), scores)
    await ballots.close_ballot(ctx, ANA, ref)
    return ref, links


async def petition_with_signatures(ctx: ServiceContext) -> None:
    view = await petitions.start_petition(ctx, CHLOE, "Adopt a new logo", room_id="!r:harmony.uk")
    for signer in (await signing_members(ctx, leaving_out=(CHLOE,)))[:3]:
        await petitions.sign_petition(ctx, signer, view.ref)


@pytest.fixture
async def full(demo: ServiceContext) -> tuple[ServiceContext, dict[str, str]]:
    _ref, links = await counted_meeting(demo)
    await petition_with_signatures(demo)
    return demo, links


@pytest.fixture
async def empty(empty_url: str, clock, tmp_path: Path) -> AsyncIterator[ServiceContext]:
    """A second, migrated, empty database."""
    engine = make_engine(empty_url)
    await migrations.upgrade(engine)
    yield ServiceContext(
        engine=engine,
        rules=Rules(),
        clock=clock,
        secret_key=b"test-secret-key-not-for-production",
        ballot_keys_path=tmp_path / "other-keys",
    )
    await engine.dispose()


def without_time(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != "exported_at"}


async def test_export_import_export_is_exact_and_the_chain_verifies(full, empty):
    source, _links = full
    first = await export.export_record(source)
    assert (first["format"], first["version"]) == ("harmony-export", 1)
    assert first["schema"] == migrations.head_revision()
    tables = first["tables"]
    assert tables["counted_ballots"] and tables["consensus_records"]
    assert len(tables["signatures"]) == 4 and tables["suggestions"] and tables["audit_events"]
    merged = [o for o in tables["options"] if o["merged_into_id"] is not None]
    assert merged and all(o["merged_into_id"] > o["id"] for o in merged)  # a later row
    # Plain JSON: the text form loads back to the same document.
    assert json.loads(export.dumps(first)) == first

    summary = await export.import_record(empty, json.loads(export.dumps(first)))
    assert summary.total == sum(len(rows) for rows in tables.values())

    second = await export.export_record(empty)
    assert export.dumps(without_time(second)) == export.dumps(without_time(first))
    check = await consensus.check_chain(empty)
    assert check.problem is None and check.count == len(tables["consensus_records"]) >= 1
    assert check.head == tables["consensus_records"][-1]["hash"]

    # The copy is a working database: new rows get new IDs (sequences were moved on).
    view = await petitions.start_petition(empty, ANA, "A second petition")
    assert view.ref == f"P-{max(p['id'] for p in tables['petitions']) + 1}"
    counted = await ballots.published_ballots(empty, f"M-{tables['meetings'][-1]['id']}")
    assert len(counted.splitlines()) == 1 + len(tables["counted_ballots"])


async def test_no_secret_leaves_in_the_export(full):
    source, links = full
    async with source.transaction() as session:
        hashes = list(await session.scalars(select(VotingRight.token_hash)))
        keys = list(await session.scalars(select(BallotRound.seal_key)))
        bodies = list(await session.scalars(select(OutboxMessage.body)))
    secrets = [h for h in hashes if h]
    secrets += [k.hex() for k in keys if k] + [base64.b64encode(k).decode() for k in keys if k]
    secrets += [token_of(link) for link in links.values()] + list(links.values())
    assert len(secrets) > len(links) * 2
    text = export.dumps(await export.export_record(source))
    assert [secret for secret in secrets if secret in text] == []
    assert not any(body in text for body in bodies if len(body) > 40)  # no outbox message
    for name in ("spent_tokens", "sealed_ballots", "outbox", "paper_sign_ins", "matrix_state"):
        assert name not in json.loads(text)["tables"]


async def test_refused_while_a_round_is_open(demo):
    ref = await meeting_at_vote(demo, await voters(demo, 7))
    await ballots.open_ballot(demo, ANA, ref)
    with pytest.raises(RuleViolation) as refused:
        await export.export_record(demo)
    assert "close the ballot first" in refused.value.message.render()


async def test_import_refuses_a_database_that_is_not_empty(full):
    source, _links = full
    document = await export.export_record(source)
    before = await row_counts(source)
    with pytest.raises(RuleViolation) as refused:
        await export.import_record(source, document)
    assert "not empty" in refused.value.message.render()
    assert await row_counts(source) == before


async def test_a_failed_import_writes_nothing(full, empty):
    source, _links = full
    document = await export.export_record(source)
    # The last table written holds a row pointing at a person who does not exist.
    document["tables"]["audit_events"][-1]["actor_id"] = 10_000
    with pytest.raises(InvalidInput):
        await export.import_record(empty, document)
    assert set((await row_counts(empty)).values()) == {0}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(format="something-else"), "not a Harmony export"),
        (lambda d: d.update(version=2), "version 2"),
        (lambda d: d.update(schema="0001"), "schema revision 0001"),
        (lambda d: d["tables"].pop("people"), "missing: people"),
        (lambda d: d["tables"].update(outbox=[]), "unknown: outbox"),
        (lambda d: d["tables"]["people"][0].update(token="x"), "Row 1 of people"),
        (lambda d: d["tables"]["people"][0].update(created_at="yesterday"), "Row 1 of people"),
        (lambda d: d["tables"]["people"][0].update(status="king"), "Row 1 of people"),
    ],
)
async def test_import_refuses_another_document(demo, empty, change, words):
    document = await export.export_record(demo)
    change(document)
    with pytest.raises((InvalidInput, RuleViolation)) as refused:
        await export.import_record(empty, document)
    assert words in refused.value.message.render()
    assert set((await row_counts(empty)).values()) == {0}


async def test_merged_options_point_at_their_new_option_after_import(full, empty):
    source, _links = full
    await export.import_record(empty, await export.export_record(source))
    async with empty.transaction() as session:
        options = {o.number: o for o in await session.scalars(select(Option))}
    assert options[2].merged_into_id == options[3].merged_into_id == options[4].id
