"""Who may call a Moot. Clause: "Members may call for either kind of decision-making
process", and "Assembly Moot, any gathering which obtains quorum for the assembly".
Default reading ([rules] moot_called_by = "members"): any non-suspended member of the
assembly calls its Moot; its secretaries are told and prepare it."""

from dataclasses import replace

import pytest
from sqlalchemy import select

from harmony_matrix.config import load_config
from harmony_matrix.errors import InvalidInput, NotAllowed
from harmony_matrix.services import meetings, preparation
from harmony_matrix.storage.models import OutboxMessage

from .helpers import ANA, CHLOE, ELIF, GWEN, IRIS, MEDIA, OUTSIDER_MEMBER, row_counts


async def test_any_member_of_the_assembly_calls_its_moot(demo):
    called = await meetings.call_moot(demo, GWEN, MEDIA, "Shall we post weekly?")
    assert called.ref == "M-1"
    # A participant of the assembly too: the assembly's members include its participants.
    assert (await meetings.call_moot(demo, ELIF, MEDIA, "Podcast?")).ref == "M-2"
    async with demo.transaction() as session:
        told = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedupe_key.like("moot-called:%"))
            )
        )
    # Ana is the Media WG's secretary: she is told twice, once per Moot, to prepare it.
    assert [m.destination for m in told] == [ANA, ANA]
    assert "Shall we post weekly?" in told[0].body
    # The member who called it cannot prepare it: the secretary does.
    with pytest.raises(NotAllowed):
        await preparation.notify(demo, GWEN, called.ref)


async def test_outsiders_and_suspended_members_cannot_call(demo):
    before = await row_counts(demo)
    with pytest.raises(NotAllowed):
        await meetings.call_moot(demo, OUTSIDER_MEMBER, MEDIA, "Not my assembly")
    with pytest.raises(NotAllowed, match="suspended"):
        await meetings.call_moot(demo, IRIS, MEDIA, "Suspended")
    assert await row_counts(demo) == before


async def test_secretaries_only_when_the_party_says_so(demo):
    demo.rules = replace(demo.rules, moot_called_by="secretaries")
    with pytest.raises(NotAllowed, match="secretary"):
        await meetings.call_moot(demo, CHLOE, MEDIA, "Can I call this?")
    assert (await meetings.call_moot(demo, ANA, MEDIA, "Q?")).ref == "M-1"
    with pytest.raises(ValueError, match="moot_called_by"):
        replace(demo.rules, moot_called_by="anyone")


def test_the_setting_is_read_and_checked():
    assert load_config(None, {}).rules.moot_called_by == "members"
    chosen = load_config(None, {"HARMONY_RULES__MOOT_CALLED_BY": "secretaries"})
    assert chosen.rules.moot_called_by == "secretaries"
    with pytest.raises(InvalidInput, match="moot_called_by"):
        load_config(None, {"HARMONY_RULES__MOOT_CALLED_BY": "anyone"})
