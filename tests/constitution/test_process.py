import pytest

from harmony_matrix.constitution import process
from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.constitution.process import Phase, PreparationStep
from harmony_matrix.errors import RuleViolation

ALL_BEFORE = set(process.BEFORE_OPENING)


def test_opening_needs_the_first_four_steps():
    process.check_can_open(Phase.PLANNING, ALL_BEFORE, Rules(), informed_of_date=True)
    with pytest.raises(RuleViolation) as caught:
        process.check_can_open(
            Phase.PLANNING, {PreparationStep.DATE_SET}, Rules(), informed_of_date=False
        )
    text = str(caught.value.message)
    assert "facts collected" in text and "materials prepared" in text
    assert "date set" not in text
    process.check_can_open(
        Phase.PLANNING, set(), Rules(require_preparation=False), informed_of_date=False
    )
    with pytest.raises(RuleViolation, match="new date"):
        process.check_can_open(Phase.PLANNING, ALL_BEFORE, Rules(), informed_of_date=False)


@pytest.mark.parametrize("phase", [p for p in Phase if p is not Phase.PLANNING])
def test_opening_only_once(phase):
    with pytest.raises(RuleViolation):
        process.check_can_open(phase, ALL_BEFORE, Rules(), informed_of_date=True)


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
