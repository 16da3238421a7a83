"""Primary remit. Clause: "Consensus arising from a Moot may be considered Party Consensus
if it is produced by any Working Group which is considered to have primary remit for that
decision by its purpose. For example, the Disability Activism Society leads on disability
issues in entirety, but if the DAS declines to take the lead on an issue, the Policy
Society for Disability may do so instead." """

from hypothesis import given
from hypothesis import strategies as st

from harmony_matrix.constitution.remit import (
    RemitLink,
    is_party_consensus,
    lead_for,
    normalise_topic,
)
from harmony_matrix.constitution.scheduling import MeetingKind

DAS, PSD, OWG = "das", "psd", "owg"
LINKS = (RemitLink("Disability", DAS, PSD), RemitLink("constitution", OWG))


def test_the_das_leads_on_disability_unless_it_declines():
    assert lead_for("disability", LINKS, declined=()) == DAS
    assert lead_for("  DISABILITY ", LINKS, declined=()) == DAS
    assert lead_for("disability", LINKS, declined={DAS}) == PSD
    assert lead_for("disability", LINKS, declined={DAS, PSD}) is None
    # The fallback declining alone changes nothing: the lead has not declined.
    assert lead_for("disability", LINKS, declined={PSD}) == DAS


def test_no_remit_no_lead():
    assert lead_for("transport", LINKS, declined=()) is None
    assert lead_for("constitution", LINKS, declined={OWG}) is None  # no fallback named


def test_the_fallbacks_fallback_leads_when_both_decline():
    links = (RemitLink("disability", DAS, PSD), RemitLink("disability", PSD, OWG))
    assert lead_for("disability", links, declined={DAS}) == PSD
    assert lead_for("disability", links, declined={DAS, PSD}) == OWG


def test_a_cycle_of_fallbacks_ends_with_no_lead():
    cycle = (RemitLink("t", "a", "b"), RemitLink("t", "b", "a"))
    assert lead_for("t", cycle, declined={"a", "b"}) is None
    tail_cycle = (RemitLink("t", "a", "b"), RemitLink("t", "b", "c"), RemitLink("t", "c", "b"))
    assert lead_for("t", tail_cycle, declined=()) == "a"
    assert lead_for("t", tail_cycle, declined={"a", "b", "c"}) is None
    assert lead_for("t", (RemitLink("t", "a", "a"),), declined={"a"}) is None


names = st.sampled_from("abcdef")


@given(
    st.lists(st.tuples(names, st.none() | names), max_size=8, unique_by=lambda x: x[0]),
    st.sets(names),
)
def test_the_lead_is_never_one_that_declined_and_always_in_the_chain(pairs, declined):
    links = [RemitLink("topic", lead, fallback) for lead, fallback in pairs]
    lead = lead_for("topic", links, declined)  # terminates, whatever the fallbacks
    if lead is not None:
        assert lead not in declined
        assert lead in {link.lead for link in links} | {link.fallback for link in links}


def test_only_a_moot_of_the_lead_makes_party_consensus():
    assert is_party_consensus(MeetingKind.ASSEMBLY_MOOT, (DAS,), DAS)
    assert not is_party_consensus(MeetingKind.ASSEMBLY_MOOT, (PSD,), DAS)
    assert not is_party_consensus(MeetingKind.ASSEMBLY_MOOT, (DAS,), None)
    assert not is_party_consensus(MeetingKind.THING_OF_ASSEMBLIES, (DAS, PSD), DAS)
    assert normalise_topic(" Information   Technology ") == "information technology"
