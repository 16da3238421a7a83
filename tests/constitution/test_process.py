from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmony_matrix.constitution import process
from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.constitution.process import NoticeItem, Phase, PreparationStep
from harmony_matrix.errors import RuleViolation

ALL_BEFORE = set(process.BEFORE_OPENING)
TZ = "Europe/London"
STARTS = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)


def _open(
    phase=Phase.PLANNING,
    done=ALL_BEFORE,
    rules=None,
    *,
    changed=(),
    now=STARTS,
    starts_at=STARTS,
):
    process.check_can_open(
        phase,
        done,
        rules or Rules(),
        changed_since_notice=changed,
        now=now,
        starts_at=starts_at,
        timezone=TZ,
    )


def test_opening_needs_the_first_four_steps():
    _open()
    with pytest.raises(RuleViolation) as caught:
        _open(done={PreparationStep.DATE_SET}, changed=set(NoticeItem))
    text = str(caught.value.message)
    assert "facts collected" in text and "materials prepared" in text
    assert "date set" not in text
    _open(done=set(), rules=Rules(require_preparation=False), changed=set(NoticeItem))
    with pytest.raises(RuleViolation, match="Inform them again"):
        _open(changed={NoticeItem.WHEN})


@pytest.mark.parametrize("phase", [p for p in Phase if p is not Phase.PLANNING])
def test_opening_only_once(phase):
    with pytest.raises(RuleViolation):
        _open(phase)


@pytest.mark.parametrize(
    ("item", "name"),
    [
        (NoticeItem.WHEN, "the date and time"),
        (NoticeItem.PLACE, "the place"),
        (NoticeItem.ONLINE, "the online link"),
        (NoticeItem.ACCESS, "the accessibility provisions"),
        (NoticeItem.ROUTE, "the help with routes"),
    ],
)
def test_a_changed_notice_is_named(item, name):
    with pytest.raises(RuleViolation) as caught:
        _open(changed={item})
    text = caught.value.message.render("en")
    assert name in text and "before the meeting opens" in text
    with pytest.raises(RuleViolation) as caught:
        process.check_notice_current({item}, Rules(), continuation=True)
    assert name in caught.value.message.render("en")
    assert "before the vote" in caught.value.message.render("en")
    # A party that records informing elsewhere is not asked for it.
    process.check_notice_current({item}, Rules(require_preparation=False), continuation=True)


@given(
    st.integers(min_value=-3000, max_value=3000),
    st.integers(min_value=0, max_value=24 * 60),
    st.booleans(),
)
def test_nothing_begins_before_its_announced_start(minutes_from_start, margin, preparation):
    """Clause: "the planned day of the Thing or Moot". Opening is refused exactly when it
    is earlier than the announced start less the margin, whether or not the party
    records its preparation in Harmony."""
    rules = Rules(opening_margin_minutes=margin, require_preparation=preparation)
    now = STARTS + timedelta(minutes=minutes_from_start)
    too_early = now < STARTS - timedelta(minutes=margin)
    for check in (
        lambda: _open(rules=rules, now=now),
        lambda: process.check_started(now, STARTS, rules, TZ),
    ):
        if too_early:
            with pytest.raises(RuleViolation, match="too early"):
                check()
        else:
            check()


def test_the_early_refusal_says_when():
    with pytest.raises(RuleViolation) as caught:
        process.check_started(STARTS - timedelta(days=1), STARTS, Rules(), TZ)
    text = caught.value.message.render("en")
    assert "Friday, 20 November 2026, 19:00 (Greenwich Mean Time)" in text and "30 minutes" in text
    process.check_started(STARTS - timedelta(days=1), None, Rules(), TZ)  # no date: nothing


@pytest.mark.parametrize("phase", list(Phase))
def test_only_a_meeting_that_reached_consensus_can_lead_to_another(phase):
    if phase is Phase.CONSENSUS:
        process.check_can_follow_on(phase, "M-1")
    else:
        with pytest.raises(RuleViolation, match="M-1 has not reached consensus"):
            process.check_can_follow_on(phase, "M-1")


def test_suggestions_in_discussion_and_debate_options_only_in_debate():
    process.check_can_suggest(Phase.DISCUSSION)
    process.check_can_suggest(Phase.DEBATE)
    process.check_can_edit_options(Phase.DEBATE)
    for phase in Phase:
        if phase not in (Phase.DISCUSSION, Phase.DEBATE):
            with pytest.raises(RuleViolation):
                process.check_can_suggest(phase)
        if phase is not Phase.DEBATE:
            with pytest.raises(RuleViolation):
                process.check_can_edit_options(phase)


@pytest.mark.parametrize(
    ("options", "expected"), [(1, Phase.CONSENSUS), (2, Phase.VOTE), (7, Phase.VOTE)]
)
def test_one_option_is_consensus_two_or_more_go_to_the_vote(options, expected):
    assert process.after_debate(Phase.DEBATE, options, True, True) is expected


def test_debate_needs_an_option_quorum_and_the_originator():
    with pytest.raises(RuleViolation, match="no options"):
        process.after_debate(Phase.DEBATE, 0, True, True)
    with pytest.raises(RuleViolation, match="Quorum"):
        process.after_debate(Phase.DEBATE, 2, False, True)
    with pytest.raises(RuleViolation, match="originator"):
        process.after_debate(Phase.DEBATE, 2, True, False)
    with pytest.raises(RuleViolation):
        process.after_debate(Phase.DISCUSSION, 2, True, True)


def test_no_clear_winner_returns_to_debate():
    assert process.after_vote(Phase.VOTE, clear_winner=True) is Phase.CONSENSUS
    assert process.after_vote(Phase.VOTE, clear_winner=False) is Phase.DEBATE
    with pytest.raises(RuleViolation):
        process.after_vote(Phase.DEBATE, clear_winner=True)


def test_finished_meetings_cannot_be_cancelled():
    process.check_can_cancel(Phase.DEBATE)
    for phase in process.FINISHED:
        with pytest.raises(RuleViolation):
            process.check_can_cancel(phase)
