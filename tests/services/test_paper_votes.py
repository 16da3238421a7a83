"""A vote held on paper is entered as its ballots and counted by STAR.

Clause: "potentially culminating in a ballot utilising the STAR voting system, and no
other voting system". The finding: a paper vote's winner was taken on trust (a secretary
named an option, with no ballots, recorded as star_ballot).
"""

import pytest
from sqlalchemy import func, select

from harmony_matrix.constitution.process import Phase
from harmony_matrix.errors import InvalidInput, NotAllowed, RuleViolation
from harmony_matrix.services import (
    ballot_delivery,
    ballots,
    consensus,
    debate,
    meetings,
    paper_votes,
)
from harmony_matrix.storage.models import (
    BallotRound,
    ConsensusMethod,
    ConsensusRecord,
    OutboxMessage,
    VotingRight,
)
from harmony_matrix.voting.ballot_csv import parse_ballots
from harmony_matrix.voting.star import tabulate
from tests.ballots.helpers import link_in, links_by_person, meeting_at_vote, path_of, voters
from tests.conftest import read_english

from .helpers import ANA, GWEN, row_counts

HEADER = "1. Meet monthly,2. Meet every two months,3. Meet yearly\n"


def test_there_is_no_way_to_name_a_winner_without_ballots():
    assert not hasattr(debate, "conclude_vote")


async def test_paper_ballots_are_counted_by_star_and_published(demo):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    csv = HEADER + "5,3,0\n4,5,0\n0,5,1\n5,1,0\n5,2,0\n"
    view = await paper_votes.enter_paper_vote(demo, ANA, ref, csv.encode())
    assert view.cast == 5 and view.result is not None
    assert view.result["winner"] == "1. Meet monthly"
    summary = await meetings.meeting_summary(demo, ref)
    assert summary.phase is Phase.CONSENSUS
    [entry] = await consensus.list_consensus(demo)
    assert (entry.outcome, entry.method) == ("Meet monthly", ConsensusMethod.STAR_BALLOT)
    # Published like an online ballot, and `harmony tally` recounts it to the same result.
    published = await ballots.published_ballots(demo, ref)
    rows = published.splitlines()
    assert rows[0].startswith("receipt,1. Meet monthly") and len(rows) == 6
    without_receipts = "\n".join(",".join(row.split(",")[1:]) for row in rows).encode()
    options, scores = parse_ballots(without_receipts)
    assert tabulate(scores, options).to_json() == view.result
    async with demo.transaction() as session:
        round_ = await session.scalar(select(BallotRound))
        assert round_ is not None and round_.on_paper and round_.seal_key is None
        assert round_.cleaned_at is not None  # nothing sealed, nothing to scrub


async def test_no_clear_winner_on_paper_returns_to_debate(demo):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    view = await paper_votes.enter_paper_vote(
        demo, ANA, ref, (HEADER + "5,0,0\n0,5,0\n5,0,0\n0,5,0\n").encode()
    )
    assert view.result is not None and view.result["winner"] is None
    assert (await meetings.meeting_summary(demo, ref)).phase is Phase.DEBATE
    async with demo.transaction() as session:
        assert await session.scalar(select(ConsensusRecord)) is None
    # The next vote may be held online: it is a new round.
    assert (await debate.end_debate(demo, ANA, ref)).vote_round == 2
    assert (await ballots.open_ballot(demo, ANA, ref)).number == 2


async def test_given_receipts_and_options_in_any_order_are_accepted(demo):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    csv = (
        "receipt,2. Meet every two months,meet monthly,Meet yearly\n"
        "PAPER-A,1,5,0\nPAPER-B,0,4,3\nPAPER-C,2,5,0\n"
    )
    view = await paper_votes.enter_paper_vote(demo, ANA, ref, csv.encode())
    assert view.result is not None and view.result["winner"] == "1. Meet monthly"
    published = await ballots.published_ballots(demo, ref)
    assert "PAPER-A,5,1,0" in published.splitlines()


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("1. Meet monthly,2. Meet every two months\n5,0\n", "option \u20683"),
        (HEADER + "5,3,9\n", "0 to 5"),
        ("Meet monthly,Meet every two months,Meet weekly\n5,0,0\n", "no option"),
        ("Meet monthly,1. Meet monthly,Meet yearly\n5,0,0\n", "twice"),
        ("1,2,3\n5,0,0\n", "no header row"),
        (HEADER, "no ballots"),
        (HEADER + "5,0,0\n" * 7, "7 paper ballots"),
        ("receipt," + HEADER + "A,5,0,0\nA,0,5,0\n", "receipt"),
        # A field longer than the csv module takes (131,072 characters).
        ("receipt," + HEADER + "A" * 200_000 + ",5,0,0\n", "not a CSV file Harmony can read"),
    ],
)
async def test_bad_paper_ballots_are_refused_and_nothing_is_stored(demo, csv, message):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    before = await row_counts(demo)
    with pytest.raises(InvalidInput, match=message):
        await paper_votes.enter_paper_vote(demo, ANA, ref, csv.encode())
    assert await row_counts(demo) == before
    assert (await meetings.meeting_summary(demo, ref)).phase is Phase.VOTE


async def test_a_vote_is_either_online_or_on_paper(demo):
    """Nobody who voted online may also vote on paper. Who voted online is not stored
    (docs/secret-ballot.md), so a vote with an online ballot takes no paper ballots."""
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    await ballots.open_ballot(demo, ANA, ref)
    before = await row_counts(demo)
    with pytest.raises(RuleViolation, match="ballot box"):
        await paper_votes.enter_paper_vote(demo, ANA, ref, (HEADER + "5,0,0\n").encode())
    assert await row_counts(demo) == before


async def test_only_organisers_enter_paper_ballots_and_only_at_the_vote(demo):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    with pytest.raises(NotAllowed):
        await paper_votes.enter_paper_vote(demo, GWEN, ref, (HEADER + "5,0,0\n").encode())
    await paper_votes.enter_paper_vote(demo, ANA, ref, (HEADER + "5,0,0\n").encode())
    with pytest.raises(RuleViolation):
        await paper_votes.enter_paper_vote(demo, ANA, ref, (HEADER + "5,0,0\n").encode())


# --- Deciding on paper first: !ballot paper --------------------------------------------


def _key_files(ctx) -> list[str]:
    path = ctx.ballot_keys_path
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


async def test_a_vote_held_on_paper_takes_no_online_ballot(demo):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    plan = await paper_votes.prepare_paper_vote(demo, ANA, ref)
    assert (plan.meeting_ref, plan.most_ballots, plan.withdrawn) == (ref, 6, 0)
    assert plan.header == HEADER.strip()
    assert plan.command == f"harmony ballots enter {ref} FILE.csv"
    assert [o.label for o in plan.options] == HEADER.strip().split(",")
    # Decided: no online ballot for this vote, whoever asks.
    before = await row_counts(demo)
    with pytest.raises(RuleViolation) as refused:
        await ballots.open_ballot(demo, ANA, ref)
    assert "held on paper" in refused.value.message.render("en")
    # Asking again gives the same plan and writes nothing.
    assert await paper_votes.prepare_paper_vote(demo, ANA, ref) == plan
    assert await row_counts(demo) == before
    # The ballots entered fill the same round.
    view = await paper_votes.enter_paper_vote(demo, ANA, ref, (HEADER + "5,0,0\n").encode())
    assert view.result is not None and view.result["winner"] == "1. Meet monthly"
    async with demo.transaction() as session:
        [round_] = list(await session.scalars(select(BallotRound)))
    assert round_.on_paper and round_.result == view.result and round_.closed_at is not None
    assert (await meetings.meeting_summary(demo, ref)).phase is Phase.CONSENSUS


async def test_an_online_ballot_nobody_used_is_withdrawn_first(demo):
    await read_english(demo)
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    await ballots.open_ballot(demo, ANA, ref)
    assert len(_key_files(demo)) == 1
    async with demo.transaction() as session:
        queued = list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.voting_right_id.is_not(None))
                .order_by(OutboxMessage.id)
            )
        )
    # Two links are sent; the other four are still queued.
    links = {}
    for message in queued[:2]:
        prepared = await ballot_delivery.prepare_ballot_message(demo, message.id)
        links[message.destination] = link_in(prepared.body)
        assert await ballot_delivery.confirm_ballot_message(demo, prepared)

    plan = await paper_votes.prepare_paper_vote(demo, ANA, ref)
    assert plan.withdrawn == 6 and plan.most_ballots == 6
    async with demo.transaction() as session:
        rights = await session.scalar(select(func.count()).select_from(VotingRight))
        ballot_messages = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.voting_right_id.is_not(None))
            )
        )
        told = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.dedupe_key.like("ballot-withdrawn:%"))
            )
        )
        sent = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.id.in_([m.id for m in queued]))
            )
        )
    assert rights == 0 and ballot_messages == []
    # The queued links are never sent; those who got one are told it no longer works.
    assert sorted(m.id for m in sent) == sorted(m.id for m in queued[:2])
    assert sorted(m.destination for m in told) == sorted(links)
    assert all("no longer works" in m.body for m in told)
    for link in links.values():
        with pytest.raises(NotAllowed, match="not valid"):
            await ballots.cast_ballot(demo, path_of(link), {1: 5, 2: 0, 3: 0})
    # Nothing was sealed to the withdrawn round's key; the next clean-up sweeps it.
    async with demo.transaction() as session:
        round_ = await session.scalar(select(BallotRound))
        assert round_ is not None and round_.seal_key is None and round_.on_paper
    with pytest.raises(RuleViolation):
        await ballots.open_ballot(demo, ANA, ref)
    view = await paper_votes.enter_paper_vote(demo, ANA, ref, (HEADER + "0,5,0\n").encode())
    assert view.result is not None and view.result["winner"] == "2. Meet every two months"
    assert view.eligible == 0 and view.cast == 1


async def test_once_someone_voted_online_the_vote_stays_online(demo):
    """Harmony does not know who voted, so it could not keep them from voting again on
    paper: the online ballot is not withdrawn."""
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    await ballots.open_ballot(demo, ANA, ref)
    links = await links_by_person(demo)
    await ballots.cast_ballot(demo, path_of(links[ANA]), {1: 5, 2: 0, 3: 0})
    before = await row_counts(demo)
    with pytest.raises(RuleViolation, match="1 person has already voted online"):
        await paper_votes.prepare_paper_vote(demo, ANA, ref)
    assert await row_counts(demo) == before
    assert len(_key_files(demo)) == 1


async def test_only_organisers_hold_a_vote_on_paper_and_only_at_the_vote(demo):
    ref = await meeting_at_vote(demo, await voters(demo, 6))
    before = await row_counts(demo)
    with pytest.raises(NotAllowed):
        await paper_votes.prepare_paper_vote(demo, GWEN, ref)
    assert await row_counts(demo) == before
    await paper_votes.enter_paper_vote(demo, ANA, ref, (HEADER + "5,0,0\n").encode())
    with pytest.raises(RuleViolation, match="debate has ended"):
        await paper_votes.prepare_paper_vote(demo, ANA, ref)
