from datetime import UTC, datetime, timedelta

import pytest

from harmony_matrix.constitution.eligibility import (
    Act,
    Standing,
    Status,
    check_may,
    is_suspended,
    may_vote_at_moot,
)
from harmony_matrix.errors import NotAllowed

NOW = datetime(2026, 11, 2, tzinfo=UTC)
DAY = timedelta(days=1)

MEMBER = Standing(Status.MEMBER, suspended=False)
PARTICIPANT = Standing(Status.PARTICIPANT, suspended=False)
SUSPENDED = Standing(Status.MEMBER, suspended=True)


@pytest.mark.parametrize(
    ("start", "end", "suspended"),
    [
        (None, None, False),
        (NOW - DAY, None, True),
        (NOW, None, True),  # from the start, inclusive
        (NOW + DAY, None, False),
        (NOW - DAY, NOW, False),  # to the end, exclusive
        (NOW - DAY, NOW + DAY, True),
    ],
)
def test_suspension_window(start, end, suspended):
    assert is_suspended(start, end, NOW) is suspended


@pytest.mark.parametrize("act", list(Act))
def test_suspended_may_do_nothing(act):
    with pytest.raises(NotAllowed, match="suspended"):
        check_may(SUSPENDED, act)


@pytest.mark.parametrize("act", [Act.SPEAK, Act.DEBATE, Act.VOTE])
def test_participants_speak_debate_and_vote(act):
    check_may(PARTICIPANT, act)


def test_only_members_sign():
    check_may(MEMBER, Act.SIGN)
    with pytest.raises(NotAllowed, match="not Participants"):
        check_may(PARTICIPANT, Act.SIGN)


@pytest.mark.parametrize(
    ("standing", "in_assembly", "present", "may"),
    [
        (MEMBER, True, True, True),
        (PARTICIPANT, True, True, True),
        (MEMBER, False, True, True),  # "plus any other interested Member"
        (PARTICIPANT, False, True, False),
        (MEMBER, True, False, False),  # roll call: only the present vote
        (SUSPENDED, True, True, False),
    ],
)
def test_who_votes_at_a_moot(standing, in_assembly, present, may):
    assert may_vote_at_moot(standing, in_assembly, present) is may
