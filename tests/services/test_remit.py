"""Primary remit and Party Consensus. Clause: "Consensus arising from a Moot may be
considered Party Consensus if it is produced by any Working Group which is considered to
have primary remit for that decision by its purpose. For example, the Disability
Activism Society leads on disability issues in entirety, but if the DAS declines to take
the lead on an issue, the Policy Society for Disability may do so instead." """

from dataclasses import replace

import pytest
from sqlalchemy import select

from harmony_matrix.errors import NotAllowed, RuleViolation
from harmony_matrix.services import (
    consensus,
    debate,
    meetings,
    remits,
    roll_call,
)
from harmony_matrix.storage.models import ConsensusRecord, Meeting, OutboxMessage
from tests.ballots.helpers import voters

from .helpers import (
    ANA,
    BRYN,
    CHLOE,
    DAS,
    ELIF,
    FARAH,
    GWEN,
    MEDIA,
    OWG,
    reached_before_auto_call,
)

MEDIA_PRESENT = [ANA, CHLOE, GWEN, ELIF]

PSD = "policy-society-for-disability"


async def _moot_to_consensus(ctx, slug, topic, actor, present):
    called = await meetings.call_moot(ctx, actor, slug, "How do we caption videos?", topic=topic)
    ctx.rules = replace(ctx.rules, require_preparation=False)
    await roll_call.open_meeting(ctx, actor, called.ref)
    for who in present:
        await roll_call.record_attendance(ctx, who, called.ref)
    await debate.start_debate(ctx, actor, called.ref)
    await debate.add_option(ctx, actor, called.ref, "Always, by a person")
    await debate.end_debate(ctx, actor, called.ref)
    return called.ref


async def test_the_lead_and_its_fallback(demo):
    assert await remits.lead_for_topic(demo, "Disability") == DAS
    assert await remits.lead_for_topic(demo, "transport") is None
    with pytest.raises(NotAllowed):
        await remits.decline_remit(demo, FARAH, DAS, "disability")  # not the DAS's secretary
    with pytest.raises(RuleViolation, match="does not lead"):
        await remits.decline_remit(demo, CHLOE, DAS, "media")
    assert await remits.decline_remit(demo, CHLOE, DAS, "disability", reason="Busy") == PSD
    assert await remits.lead_for_topic(demo, "disability") == PSD
    assert await remits.decline_remit(demo, FARAH, PSD, "disability") is None
    assert await remits.lead_for_topic(demo, "disability") is None


async def test_a_moot_of_the_lead_makes_party_consensus(demo):
    # The Media WG leads on media.
    ref = await _moot_to_consensus(demo, MEDIA, "Media", ANA, MEDIA_PRESENT)
    [entry] = await consensus.list_consensus(demo)
    assert entry.meeting_ref == ref and entry.party_consensus
    assert await consensus.verify_chain(demo) is None
    async with demo.transaction() as session:
        meeting = await session.get(Meeting, int(ref[2:]))
        assert meeting is not None and meeting.topic == "media"  # the remit's spelling


async def test_a_moot_of_another_assembly_is_not_party_consensus(demo):
    await _moot_to_consensus(demo, OWG, "media", ANA, await voters(demo, 6))
    [entry] = await consensus.list_consensus(demo)
    assert not entry.party_consensus


async def test_after_the_lead_declines_the_fallbacks_moot_is_party_consensus(demo):
    # The Secretarial Committee leads on consensus monitoring; the OWG is its fallback.
    assert await remits.lead_for_topic(demo, "consensus monitoring") == "secretarial-committee"
    before = await _moot_to_consensus(demo, OWG, "consensus monitoring", ANA, await voters(demo, 6))
    assert (
        await remits.decline_remit(demo, BRYN, "secretarial-committee", "consensus monitoring")
        == OWG
    )
    after = await _moot_to_consensus(demo, OWG, "consensus monitoring", ANA, await voters(demo, 6))
    entries = {e.meeting_ref: e.party_consensus for e in await consensus.list_consensus(demo)}
    assert entries == {before: False, after: True}
    assert await consensus.verify_chain(demo) is None
    # The OWG's secretary was told it now leads.
    async with demo.transaction() as session:
        told = list(
            await session.scalars(
                select(OutboxMessage.destination).where(
                    OutboxMessage.dedupe_key.like("remit-lead:%")
                )
            )
        )
    assert told == [ANA]


async def test_declining_for_one_meeting_only(demo):
    called = await meetings.call_moot(demo, FARAH, PSD, "Q?", topic="disability")
    assert await remits.decline_remit(demo, CHLOE, DAS, "disability", meeting=called.ref) == PSD
    assert await remits.lead_for_topic(demo, "disability", meeting=called.ref) == PSD
    assert await remits.lead_for_topic(demo, "disability") == DAS


async def test_old_records_keep_verifying_with_the_new_field(demo):
    # A record written before party_consensus existed hashes without it.
    await _moot_to_consensus(demo, OWG, None, ANA, await voters(demo, 6))
    async with demo.transaction() as session:
        row = await session.scalar(select(ConsensusRecord))
        assert row is not None and not row.party_consensus
        assert row.hash == consensus.entry_hash(
            number=row.id,
            previous_hash=row.previous_hash,
            meeting_id=row.meeting_id,
            question=row.question,
            outcome=row.outcome,
            method=row.method.value,
            assemblies=row.assemblies,
            recorded_at=row.recorded_at,
            recorded_by=row.recorded_by_id,
        )
    assert await consensus.verify_chain(demo) is None


async def test_a_party_thing_on_a_led_topic_is_flagged_to_the_general_secretary(demo):
    await demo_petition_reached(demo)
    thing = await meetings.call_party_thing(demo, ANA, "P-1", topic="disability")
    async with demo.transaction() as session:
        meeting = await session.get(Meeting, int(thing.ref[2:]))
        assert meeting is not None and meeting.remit_flagged and meeting.topic == "disability"
        told = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedupe_key.like("remit-flag:%"))
            )
        )
    assert [m.destination for m in told] == [ANA]
    assert "Disability Activism Society" in told[0].body


async def demo_petition_reached(ctx):
    """A petition that reached its threshold before petitions called their Party Thing
    themselves: the General Secretary calls it, with a topic."""
    await reached_before_auto_call(ctx, CHLOE, "Make every meeting step-free")
