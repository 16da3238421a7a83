"""The ballot box: rights, links, casting, turnout, closing, publication, recount."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from harmony_matrix.constitution.process import Phase
from harmony_matrix.errors import HarmonyError, InvalidInput, NotAllowed, RuleViolation
from harmony_matrix.services import (
    ballot_delivery,
    ballots,
    consensus,
    debate,
    delivery,
    meetings,
    paper_votes,
    roll_call,
)
from harmony_matrix.storage.models import (
    BallotRoundStatus,
    CountedBallot,
    OutboxMessage,
    Person,
    SealedBallot,
    SpentToken,
    VotingRight,
)
from harmony_matrix.voting.ballot_csv import parse_ballots
from harmony_matrix.voting.links import BallotLink
from harmony_matrix.voting.star import tabulate
from tests.services.helpers import ANA, IRIS, row_counts

from .helpers import OPTIONS, link_in, links_by_person, meeting_at_vote, path_of, voters

PAPER_BALLOT = b"Meet monthly,Meet every two months,Meet yearly\n5,0,0\n"


async def test_a_whole_secret_ballot(demo):
    present = await voters(demo, 9)
    ref = await meeting_at_vote(demo, present)
    opened = await ballots.open_ballot(demo, ANA, ref)
    assert (opened.eligible, opened.cast, opened.result) == (9, 0, None)
    assert [o.label for o in opened.options] == [f"{i}. {t}" for i, t in enumerate(OPTIONS, 1)]
    links = await links_by_person(demo)
    assert set(links) == set(present)

    # 5 prefer option 2 strongly; 4 love option 1 but tolerate 2.
    receipts = []
    for index, who in enumerate(present):
        scores = {1: 1, 2: 5, 3: 0} if index < 5 else {1: 5, 2: 4, 3: 0}
        paper = await ballots.ballot_paper(demo, path_of(links[who]))
        assert paper.question.startswith("Should we publish")
        receipts.append(await ballots.cast_ballot(demo, path_of(links[who]), scores))
        status = await ballots.round_status(demo, ref)
        assert status.cast == index + 1 and status.result is None  # turnout only
    assert len(set(receipts)) == 9

    closed = await ballots.close_ballot(demo, ANA, ref)
    assert closed.status is BallotRoundStatus.CLOSED
    assert closed.result["winner"] == "2. Meet every two months"
    assert closed.result["no_clear_winner"] is False
    assert closed.result["totals"]["2. Meet every two months"] == 5 * 5 + 4 * 4
    summary = (await consensus.list_consensus(demo))[-1]
    assert summary.outcome == "Meet every two months" and summary.method == "star_ballot"

    published = await ballots.published_ballots(demo, ref)
    lines = published.splitlines()
    assert lines[0] == "receipt,1. Meet monthly,2. Meet every two months,3. Meet yearly"
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(receipts)
    # Anyone can recount the published ballots to the same result.
    body = "\n".join(line.split(",", 1)[1] for line in lines).encode()
    options, scores = parse_ballots(body)
    recount = tabulate(scores, options).to_json()
    assert recount["winner"] == closed.result["winner"]
    assert recount["totals"] == closed.result["totals"]


async def test_no_clear_winner_returns_to_debate_and_a_new_round(demo):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref)
    links = await links_by_person(demo)
    # Three prefer 1, three prefer 2, with equal totals and five-star counts: a true tie.
    for index, who in enumerate(present):
        scores = {1: 5, 2: 0, 3: 0} if index % 2 else {1: 0, 2: 5, 3: 0}
        await ballots.cast_ballot(demo, path_of(links[who]), scores)
    closed = await ballots.close_ballot(demo, ANA, ref)
    assert closed.result["winner"] is None and closed.result["no_clear_winner"] is True
    assert (await meetings.meeting_summary(demo, ref)).phase is Phase.DEBATE
    with pytest.raises(RuleViolation):
        # phase is debate now
        await paper_votes.enter_paper_vote(demo, ANA, ref, PAPER_BALLOT)
    await debate.withdraw_option(demo, ANA, ref, 3)
    assert (await debate.end_debate(demo, ANA, ref)).vote_round == 2
    second = await ballots.open_ballot(demo, ANA, ref)
    assert second.number == 2 and second.eligible == 6 and second.cast == 0
    assert [o.number for o in second.options] == [1, 2]


async def test_every_bad_link_is_refused_and_stores_nothing(demo, clock):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref)
    links = await links_by_person(demo)
    good = path_of(links[present[1]])
    scores = {1: 3, 2: 2, 3: 1}
    before = await row_counts(demo)

    round_id, token, expires, signature = good.split(".")
    tampered = [
        f"{round_id}.{token}.{int(expires) + 3600}.{signature}",  # later expiry
        f"{round_id}.{token[:-2]}xx.{expires}.{signature}",  # other token
        f"{int(round_id) + 1}.{token}.{expires}.{signature}",  # other round
        f"{good[:-3]}abc",  # forged signature
        "not-a-link",
        "",
    ]
    for link in tampered:
        with pytest.raises(NotAllowed, match="not valid"):
            await ballots.cast_ballot(demo, link, scores)
    # A correctly signed link for a round the token's right does not belong to.
    key = demo.secret_key
    other = BallotLink(int(round_id) + 1, token, int(expires)).sign(key)
    with pytest.raises(NotAllowed, match="not valid"):
        await ballots.cast_ballot(demo, other, scores)
    # Bad scores: nothing stored, and the link still works afterwards.
    with pytest.raises(InvalidInput, match="Select a score for \u20683\\. Meet yearly\u2069"):
        await ballots.cast_ballot(demo, good, {1: 3, 2: 2})
    with pytest.raises(InvalidInput, match="from 0 to 5"):
        await ballots.cast_ballot(demo, good, {1: 3, 2: 6, 3: 0})
    with pytest.raises(InvalidInput, match="no option 9"):
        await ballots.cast_ballot(demo, good, {1: 3, 2: 2, 3: 0, 9: 1})
    assert await row_counts(demo) == before

    await ballots.cast_ballot(demo, good, scores)
    after_one = await row_counts(demo)
    with pytest.raises(RuleViolation, match="already been used"):
        await ballots.cast_ballot(demo, good, scores)
    # Expired: the link's time has passed.
    clock.advance(hours=73)
    with pytest.raises(NotAllowed, match="has closed"):
        await ballots.cast_ballot(demo, path_of(links[present[2]]), scores)
    assert await row_counts(demo) == after_one


async def test_a_right_has_one_link_ever(demo):
    """Replacing a link would let someone vote, ask for a new link and vote again:
    Harmony cannot tell whether a link was used without recording who voted."""
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref)
    async with demo.transaction() as session:
        message = await session.scalar(
            select(OutboxMessage).where(
                OutboxMessage.destination == present[0],
                OutboxMessage.voting_right_id.is_not(None),
            )
        )
    before = await row_counts(demo)
    # The sender mints a link in memory; a retry (the first send failed, or the sender
    # died before confirming) mints another, with a new transaction ID.
    first = await ballot_delivery.prepare_ballot_message(demo, message.id)
    second = await ballot_delivery.prepare_ballot_message(demo, message.id)
    assert link_in(first.body) != link_in(second.body)
    assert first.transaction_id != second.transaction_id
    assert "/vote/" not in repr(first)  # never in a log line or a traceback
    assert await row_counts(demo) == before  # preparing writes nothing
    # Unconfirmed, a link was never valid, even if it reached the member.
    with pytest.raises(NotAllowed, match="latest message"):
        await ballots.cast_ballot(demo, path_of(link_in(first.body)), {1: 5, 2: 0, 3: 0})
    assert await ballot_delivery.confirm_ballot_message(demo, second)
    # A late confirmation of the other attempt changes nothing: one link, ever.
    assert not await ballot_delivery.confirm_ballot_message(demo, first)
    with pytest.raises(RuleViolation, match="already been sent"):
        await ballot_delivery.prepare_ballot_message(demo, message.id)
    with pytest.raises(ValueError, match="confirm_ballot_message"):
        await delivery.mark_delivered(demo, message.id, "$event")
    async with demo.transaction() as session:
        stored = await session.get(OutboxMessage, message.id)
    assert "/vote/" not in stored.body and stored.sent_at is not None
    link = path_of(link_in(second.body))
    await ballots.cast_ballot(demo, link, {1: 5, 2: 0, 3: 0})
    with pytest.raises(RuleViolation, match="already been used"):
        await ballots.cast_ballot(demo, link, {1: 0, 2: 5, 3: 0})
    with pytest.raises(NotAllowed, match="latest message"):
        await ballots.cast_ballot(demo, path_of(link_in(first.body)), {1: 0, 2: 5, 3: 0})
    assert (await ballots.round_status(demo, ref)).cast == 1


async def test_a_validly_signed_link_without_a_right_is_refused(demo):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    opened = await ballots.open_ballot(demo, ANA, ref)
    forged = BallotLink(opened.round_id, "made-up-token", int(opened.closes_at.timestamp()))
    before = await row_counts(demo)
    with pytest.raises(NotAllowed, match="not valid"):
        await ballots.cast_ballot(demo, forged.sign(demo.secret_key), {1: 1, 2: 1, 3: 1})
    assert await row_counts(demo) == before


async def test_closing_keeps_its_promised_time(demo, clock):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref, closes_at=demo.now() + timedelta(hours=2))
    links = await links_by_person(demo)
    for who in present[:4]:
        await ballots.cast_ballot(demo, path_of(links[who]), {1: 5, 2: 2, 3: 0})
    with pytest.raises(RuleViolation, match="2 of 6 have not voted"):
        await ballots.close_ballot(demo, ANA, ref)
    with pytest.raises(RuleViolation, match="Close the ballot first"):
        await meetings.cancel_meeting(demo, ANA, ref, "Changed our minds")
    clock.advance(hours=2)
    with pytest.raises(NotAllowed, match="has closed"):
        await ballots.cast_ballot(demo, path_of(links[present[4]]), {1: 5, 2: 2, 3: 0})
    closed = await ballots.close_ballot(demo, ANA, ref)
    assert closed.cast == 4 and closed.result["winner"] == "1. Meet monthly"


async def test_a_vote_is_counted_even_if_the_room_empties(demo):
    """Quorum was checked when the vote began; people leaving (here: suspended) after
    voting must not make the ballot impossible to close."""
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref)
    links = await links_by_person(demo)
    for who in present:
        await ballots.cast_ballot(demo, path_of(links[who]), {1: 5, 2: 1, 3: 0})
    async with demo.transaction() as session:
        for person in await session.scalars(
            select(Person).where(Person.matrix_id.in_(present[1:4]))
        ):
            person.suspended_from = demo.now()
    closed = await ballots.close_ballot(demo, ANA, ref)
    assert closed.result["winner"] == "1. Meet monthly"
    assert (await meetings.meeting_summary(demo, ref)).phase is Phase.CONSENSUS


async def test_closing_while_people_vote_loses_no_receipted_ballot(demo, clock):
    present = await voters(demo, 10)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref, closes_at=demo.now() + timedelta(minutes=5))
    links = await links_by_person(demo)
    clock.advance(minutes=4)
    casts = [ballots.cast_ballot(demo, path_of(links[w]), {1: 5, 2: 1, 3: 0}) for w in present]

    async def close_when_due():
        await asyncio.sleep(0)
        clock.advance(minutes=1)
        return await ballots.close_ballot(demo, ANA, ref)

    results = await asyncio.gather(*casts, close_when_due(), return_exceptions=True)
    receipts = [r for r in results[:-1] if isinstance(r, str)]
    closed = results[-1]
    assert not isinstance(closed, BaseException), closed
    # Every voter who got a receipt is counted, and nothing else is.
    assert closed.result["ballots"] == len(receipts)
    published = await ballots.published_ballots(demo, ref)
    assert sorted(line.split(",")[0] for line in published.splitlines()[1:]) == sorted(receipts)
    refused = [r for r in results[:-1] if not isinstance(r, str)]
    assert all(isinstance(r, HarmonyError) for r in refused), refused


async def test_a_hundred_simultaneous_casts_store_one_ballot(demo):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref)
    link = path_of((await links_by_person(demo))[present[0]])
    results = await asyncio.gather(
        *(ballots.cast_ballot(demo, link, {1: 5, 2: 1, 3: 0}) for _ in range(100)),
        return_exceptions=True,
    )
    receipts = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if not isinstance(r, str)]
    assert len(receipts) == 1
    assert all(isinstance(r, RuleViolation) for r in refused), {type(r) for r in refused}
    async with demo.transaction() as session:
        assert len(list(await session.scalars(select(SealedBallot)))) == 1
        assert len(list(await session.scalars(select(SpentToken)))) == 1
    demo.clock.advance(hours=80)  # past the closing time: five never voted
    await ballots.close_ballot(demo, ANA, ref)
    async with demo.transaction() as session:
        stored = list(await session.scalars(select(CountedBallot)))
    assert [b.receipt for b in stored] == receipts


async def test_suspended_people_get_no_right_and_cannot_use_one(demo, clock):
    present = await voters(demo, 7)
    ref = await meeting_at_vote(demo, present)
    async with demo.transaction() as session:
        suspended = await session.scalar(select(Person).where(Person.matrix_id == present[6]))
        suspended.suspended_from = clock()
    opened = await ballots.open_ballot(demo, ANA, ref)
    assert opened.eligible == 6
    links = await links_by_person(demo)
    assert present[6] not in links
    async with demo.transaction() as session:
        later = await session.scalar(select(Person).where(Person.matrix_id == present[5]))
        later.suspended_from = clock()
    with pytest.raises(NotAllowed, match="suspended"):
        await ballots.cast_ballot(demo, path_of(links[present[5]]), {1: 1, 2: 1, 3: 1})
    with pytest.raises(NotAllowed, match="suspended"):
        await roll_call.record_attendance(demo, IRIS, ref)


async def test_someone_arriving_during_the_ballot_gets_a_right(demo):
    present = await voters(demo, 7)
    ref = await meeting_at_vote(demo, present[:6])
    await ballots.open_ballot(demo, ANA, ref)
    await roll_call.record_attendance(demo, present[6], ref)
    assert (await ballots.round_status(demo, ref)).eligible == 7
    assert present[6] in await links_by_person(demo)


async def test_the_ballot_box_has_rules(demo):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    with pytest.raises(NotAllowed):
        await ballots.open_ballot(demo, present[3], ref)  # not a secretary
    await ballots.open_ballot(demo, ANA, ref, closes_at=demo.now() + timedelta(hours=2))
    with pytest.raises(RuleViolation, match="already been opened"):
        await ballots.open_ballot(demo, ANA, ref)
    with pytest.raises(RuleViolation, match="close the ballot"):
        await paper_votes.enter_paper_vote(demo, ANA, ref, PAPER_BALLOT)
    with pytest.raises(RuleViolation, match="when the ballot closes"):
        await ballots.published_ballots(demo, ref)
    demo.secret_key = b"short"
    with pytest.raises(RuleViolation, match="secret key"):
        await ballot_delivery.prepare_ballot_message(demo, 1)


async def test_links_expire_with_their_round(demo, clock):
    present = await voters(demo, 6)
    ref = await meeting_at_vote(demo, present)
    await ballots.open_ballot(demo, ANA, ref, closes_at=demo.now() + timedelta(hours=1))
    link = path_of((await links_by_person(demo))[present[0]])
    assert BallotLink.verify(link, demo.secret_key, clock()).expires == int(
        (clock() + timedelta(hours=1)).timestamp()
    )
    clock.advance(minutes=61)
    with pytest.raises(NotAllowed, match="has closed"):
        await ballots.cast_ballot(demo, link, {1: 1, 2: 1, 3: 1})
    async with demo.transaction() as session:
        assert len(list(await session.scalars(select(VotingRight)))) == 6
