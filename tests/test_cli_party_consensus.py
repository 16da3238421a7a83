"""`harmony consensus` shows Party Consensus entries as such (primary remit)."""

from harmony_matrix.constitution.scheduling import MeetingKind
from harmony_matrix.services import consensus, meetings
from harmony_matrix.services.lookup import meeting_by_ref
from harmony_matrix.storage.models import ConsensusMethod
from tests.services.helpers import ANA, MEDIA
from tests.test_cli import harmony


async def test_party_consensus_is_marked_in_the_listing(demo, database_url):
    led = await meetings.call_moot(demo, ANA, MEDIA, "Caption every video?", topic="media")
    other = await meetings.call_moot(demo, ANA, MEDIA, "Meet monthly?")
    assert led.kind is MeetingKind.ASSEMBLY_MOOT
    async with demo.transaction() as session:
        for ref, party in ((led.ref, True), (other.ref, False)):
            meeting = await meeting_by_ref(session, ref)
            await consensus.append(
                session,
                meeting,
                "Yes",
                ConsensusMethod.SINGLE_OPTION,
                None,
                demo.now(),
                party_consensus=party,
            )
    listing = harmony("consensus", database=database_url)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert "Party Consensus" in lines[0] and "Caption every video?" in lines[0]
    assert "Party Consensus" not in lines[1]
    assert harmony("consensus", "--verify", database=database_url).returncode == 0
