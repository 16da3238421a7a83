"""A Thing of Assemblies needs each involved assembly's agreement.

Clause: "the relevant Secretary (or, if collaborating between assemblies, Secretaries)".
The finding: the Disability Activism Society's secretary called a Thing that includes the
Operational Working Group, and it was planned without the OWG's say.
"""

from datetime import timedelta

import pytest
from sqlalchemy import select

from harmony_matrix.constitution.process import PreparationStep
from harmony_matrix.errors import NotAllowed, RuleViolation
from harmony_matrix.services import meetings, preparation, roll_call, things
from harmony_matrix.storage.models import OutboxMessage, ThingAgreement

from .helpers import ANA, BRYN, CHLOE, DAS, FARAH, GWEN, OWG, row_counts, to_start

PSD = "policy-society-for-disability"


async def _schedule(ctx, actor, ref):
    return await preparation.schedule(
        ctx,
        actor,
        ref,
        ctx.now() + timedelta(days=10),
        online_url="https://meet.example/thing",
        accessibility="Easy Read papers",
    )


async def test_one_secretary_cannot_pull_another_assembly_into_a_thing(demo):
    called = await meetings.call_thing(demo, CHLOE, [DAS, OWG], "Shall the OWG caption every call?")
    # The call says who has agreed and who has not.
    assert called.agreed == (DAS,) and called.awaiting == (OWG,)
    before = await row_counts(demo)
    with pytest.raises(RuleViolation, match="Operational Working Group"):
        await _schedule(demo, CHLOE, called.ref)
    with pytest.raises(RuleViolation, match="to agree"):
        await preparation.notify(demo, CHLOE, called.ref)
    with pytest.raises(RuleViolation, match="to agree"):
        await roll_call.open_meeting(demo, CHLOE, called.ref)
    assert await row_counts(demo) == before
    # The OWG's secretary (Ana) was told, through the outbox, in her language.
    async with demo.transaction() as session:
        told = list(
            await session.scalars(
                select(OutboxMessage.destination).where(
                    OutboxMessage.dedupe_key.like("thing-agree:%")
                )
            )
        )
    assert told == [ANA]
    # A moderator of the OWG, or a secretary of an assembly already agreed, cannot agree.
    with pytest.raises(NotAllowed):
        await things.agree_to_thing(demo, BRYN, called.ref)
    with pytest.raises(NotAllowed):
        await things.agree_to_thing(demo, CHLOE, called.ref)
    with pytest.raises(NotAllowed):
        await things.agree_to_thing(demo, GWEN, called.ref)
    agreed = await things.agree_to_thing(demo, ANA, called.ref)
    assert set(agreed.agreed) == {DAS, OWG} and agreed.awaiting == ()
    assert (await meetings.meeting_summary(demo, called.ref)).awaiting == ()
    await _schedule(demo, CHLOE, called.ref)
    with pytest.raises(RuleViolation, match="already"):
        await things.agree_to_thing(demo, ANA, called.ref)


async def test_each_secretary_agrees_for_their_own_assembly(demo):
    called = await meetings.call_thing(demo, CHLOE, [DAS, OWG, PSD], "A joint accessibility plan?")
    assert called.agreed == (DAS,) and set(called.awaiting) == {OWG, PSD}
    partly = await things.agree_to_thing(demo, FARAH, called.ref)  # secretary of the PSD
    assert set(partly.agreed) == {DAS, PSD} and partly.awaiting == (OWG,)
    with pytest.raises(RuleViolation):
        await _schedule(demo, CHLOE, called.ref)
    # The General Secretary may agree for all that remain.
    done = await things.agree_to_thing(demo, ANA, called.ref)
    assert done.awaiting == ()
    async with demo.transaction() as session:
        rows = list(await session.scalars(select(ThingAgreement)))
    assert len(rows) == 3


async def test_the_general_secretary_or_operator_calls_with_everyones_agreement(demo):
    by_gs = await meetings.call_thing(demo, ANA, [DAS, PSD], "Shared Easy Read guide?")
    assert by_gs.awaiting == () and set(by_gs.agreed) == {DAS, PSD}
    by_operator = await meetings.call_thing(demo, None, [DAS, PSD], "Another?")
    assert by_operator.awaiting == ()
    await _schedule(demo, ANA, by_gs.ref)
    with pytest.raises(RuleViolation, match="Thing of Assemblies"):
        await things.agree_to_thing(demo, ANA, (await meetings.call_moot(demo, ANA, OWG, "Q?")).ref)


async def test_a_thing_agreed_and_prepared_opens(demo):
    called = await meetings.call_thing(demo, CHLOE, [DAS, PSD], "Shared Easy Read guide?")
    await things.agree_to_thing(demo, FARAH, called.ref)
    await _schedule(demo, CHLOE, called.ref)
    for step in (PreparationStep.FACTS, PreparationStep.MATERIALS):
        await preparation.record_preparation(demo, CHLOE, called.ref, step, "Ready")
    await preparation.notify(demo, CHLOE, called.ref)
    await to_start(demo, called.ref)
    assert (await roll_call.open_meeting(demo, FARAH, called.ref)).awaiting == ()
