"""The edges of each rule: each test here fails if one comparison or one allowed phase of
the pure rules is changed (issue 7: mutants that survived the suite). The mutant each
test kills is named in its docstring; docs/constitution.md ("Mutation testing") lists them.
"""

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest

from harmony_matrix.constitution.eligibility import (
    Act,
    Standing,
    Status,
    check_may,
    is_suspended,
    may_vote_at_moot,
)
from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.constitution.petitions import PetitionProgress, petition_threshold
from harmony_matrix.constitution.process import (
    BEFORE_OPENING,
    NoticeItem,
    Phase,
    after_debate,
    after_vote,
    check_can_cancel,
    check_can_debate,
    check_can_edit_options,
    check_can_open,
    check_can_suggest,
    check_preparation,
)
from harmony_matrix.constitution.quorum import (
    AssemblyPresence,
    count_present_members,
    moot_quorum,
    thing_quorum_reached,
    validate_own_quorum,
)
from harmony_matrix.constitution.scheduling import (
    MeetingKind,
    check_date,
    check_originator_available,
    date_limit_days,
)
from harmony_matrix.errors import NotAllowed, RuleViolation

RULES = Rules()
MOMENT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
ALL_PHASES = tuple(Phase)


# --- Suspension: from its start (inclusive) to its end (exclusive) -------------------


def test_a_suspension_starts_at_its_first_moment():
    """Kills `suspended_from <= at` -> `<`."""
    assert is_suspended(MOMENT, None, MOMENT)
    assert not is_suspended(MOMENT, None, MOMENT - timedelta(microseconds=1))


def test_a_suspension_ends_at_its_end():
    """Kills `at < suspended_until` -> `<=` (the suspension end)."""
    until = MOMENT + timedelta(days=30)
    assert not is_suspended(MOMENT, until, until)
    assert is_suspended(MOMENT, until, until - timedelta(microseconds=1))


def test_no_suspension_start_is_no_suspension():
    """Kills `return False` -> `return True` and `is None` -> `is not None`."""
    assert not is_suspended(None, None, MOMENT)
    assert not is_suspended(None, MOMENT + timedelta(days=1), MOMENT)


@pytest.mark.parametrize("act", list(Act))
def test_a_suspended_person_may_do_nothing(act):
    with pytest.raises(NotAllowed, match="suspended"):
        check_may(Standing(Status.MEMBER, suspended=True), act)


@pytest.mark.parametrize("act", [Act.SPEAK, Act.DEBATE, Act.VOTE])
def test_a_participant_may_speak_debate_and_vote(act):
    """Kills `act is Act.SIGN and ...` -> `or`: a Participant is refused only a signature."""
    check_may(Standing(Status.PARTICIPANT, suspended=False), act)
    check_may(Standing(Status.MEMBER, suspended=False), act)


def test_only_a_member_signs():
    check_may(Standing(Status.MEMBER, suspended=False), Act.SIGN)
    with pytest.raises(NotAllowed, match="not Participants"):
        check_may(Standing(Status.PARTICIPANT, suspended=False), Act.SIGN)


@pytest.mark.parametrize(
    ("status", "suspended", "in_assembly", "present", "expected"),
    [
        (Status.MEMBER, False, False, True, True),  # an interested Member
        (Status.PARTICIPANT, False, True, True, True),  # a participant of the assembly
        (Status.PARTICIPANT, False, False, True, False),  # an outsider Participant
        (Status.MEMBER, True, True, True, False),  # suspended
        (Status.MEMBER, False, True, False, False),  # absent
        (Status.PARTICIPANT, True, True, True, False),
    ],
)
def test_who_votes_at_a_moot(status, suspended, in_assembly, present, expected):
    assert may_vote_at_moot(Standing(status, suspended), in_assembly, present) is expected


# --- Quorum ---------------------------------------------------------------------------


@pytest.mark.parametrize("share", [Fraction(15, 100), Fraction(1), Fraction(1, 2)])
def test_own_quorum_from_exactly_fifteen_to_exactly_a_hundred_percent_is_allowed(share):
    """Kills `share < minimum` -> `<=` and `share > 1` -> `>=`."""
    validate_own_quorum(share, RULES)


@pytest.mark.parametrize(
    "share", [Fraction(15, 100) - Fraction(1, 10**6), Fraction(1) + Fraction(1, 10**6)]
)
def test_own_quorum_outside_fifteen_to_a_hundred_percent_is_refused(share):
    with pytest.raises(RuleViolation, match=r"between 15% and 100%"):
        validate_own_quorum(share, RULES)


def test_own_quorum_below_a_raised_minimum_is_refused():
    raised = Rules(minimum_quorum_share=Fraction(20, 100))
    validate_own_quorum(Fraction(20, 100), raised)
    with pytest.raises(RuleViolation, match=r"between 20% and 100%"):
        validate_own_quorum(Fraction(19, 100), raised)


def test_quorum_is_four_up_to_thirty_and_a_share_above():
    """Kills `active_population <= 30` -> `<`: 30 members still have a quorum of 4."""
    assert moot_quorum(30, None, RULES).needed == 4
    assert moot_quorum(31, None, RULES).needed == 5  # ceil(4.65)
    assert moot_quorum(0, None, RULES).needed == 4


def test_an_own_share_above_the_minimum_is_used_and_explained():
    quorum = moot_quorum(40, Fraction(1, 2), RULES)
    assert quorum.needed == 20
    assert "own quorum of 50%" in quorum.basis.render("en")
    fallback = moot_quorum(40, Fraction(10, 100), RULES)  # below 15%: 15% applies
    assert fallback.needed == 6
    assert "own quorum" not in fallback.basis.render("en")
    assert "15% of 40" in fallback.basis.render("en")


def test_an_own_share_above_everyone_is_refused():
    with pytest.raises(RuleViolation):
        moot_quorum(40, Fraction(101, 100), RULES)
    assert moot_quorum(40, Fraction(1), RULES).needed == 40


def test_a_quorum_is_reachable_only_when_enough_members_are_active():
    """Kills `active_population >= needed` -> `>`, and `present >= needed` -> `>`."""
    assert moot_quorum(4, None, RULES).reachable
    assert not moot_quorum(3, None, RULES).reachable
    quorum = moot_quorum(4, None, RULES)
    assert quorum.reached_by(4) and not quorum.reached_by(3)


def test_members_present_are_counted_once_each():
    assert count_present_members([1, 2, 2, 3, 9], [1, 2, 3, 4]) == 3
    assert count_present_members([], [1]) == 0


def test_a_thing_needs_every_assembly_and_at_least_one():
    """Kills `bool(presence) and all(...)` -> `or`, and `all` -> `any`."""
    quorum = moot_quorum(10, None, RULES)
    assert not thing_quorum_reached({})
    assert thing_quorum_reached(
        {"a": AssemblyPresence(quorum, 4), "b": AssemblyPresence(quorum, 5)}
    )
    assert not thing_quorum_reached(
        {"a": AssemblyPresence(quorum, 4), "b": AssemblyPresence(quorum, 3)}
    )


# --- Petitions ------------------------------------------------------------------------


def test_petition_threshold_rounds_up_and_needs_one():
    assert petition_threshold(20, RULES) == 3
    assert petition_threshold(21, RULES) == 4
    assert petition_threshold(0, RULES) == 1
    with pytest.raises(ValueError, match="negative"):
        petition_threshold(-1, RULES)


def test_a_petition_is_reached_at_exactly_its_threshold():
    assert PetitionProgress(3, 3).reached and PetitionProgress(3, 3).missing == 0
    assert not PetitionProgress(2, 3).reached and PetitionProgress(2, 3).missing == 1
    assert PetitionProgress(5, 3).missing == 0


# --- Phases ---------------------------------------------------------------------------


def _allowed(check, *args, **kwargs) -> set[Phase]:
    allowed = set()
    for phase in ALL_PHASES:
        try:
            check(phase, *args, **kwargs)
        except RuleViolation:
            continue
        allowed.add(phase)
    return allowed


def test_preparation_is_recorded_until_the_vote_and_not_during_it():
    """Kills preparation recorded during the vote (VOTE added to the allowed phases)."""
    assert _allowed(check_preparation) == {Phase.PLANNING, Phase.DISCUSSION, Phase.DEBATE}


def test_the_debate_starts_only_from_the_discussion():
    """Kills `start_debate` accepted from the vote (or from any other phase)."""
    assert _allowed(check_can_debate) == {Phase.DISCUSSION}


def test_suggestions_only_in_discussion_and_debate():
    assert _allowed(check_can_suggest) == {Phase.DISCUSSION, Phase.DEBATE}


def test_options_only_in_debate():
    assert _allowed(check_can_edit_options) == {Phase.DEBATE}


#: What check_can_open needs besides the phase, the steps and the rules: nothing changed
#: since the notice, and the announced start has come.
TOLD = {"changed_since_notice": (), "now": MOMENT, "starts_at": MOMENT, "timezone": "Europe/London"}
#: The place changed after the notice.
NOT_TOLD = {**TOLD, "changed_since_notice": (NoticeItem.PLACE,)}


def test_a_meeting_opens_only_from_planning():
    assert _allowed(check_can_open, set(BEFORE_OPENING), RULES, **TOLD) == {Phase.PLANNING}


def test_opening_needs_the_four_steps_and_the_current_date_told():
    with pytest.raises(RuleViolation, match="Still to do"):
        check_can_open(Phase.PLANNING, set(BEFORE_OPENING[:3]), RULES, **TOLD)
    with pytest.raises(RuleViolation, match="Inform them again"):
        check_can_open(Phase.PLANNING, set(BEFORE_OPENING), RULES, **NOT_TOLD)
    check_can_open(Phase.PLANNING, set(BEFORE_OPENING), RULES, **TOLD)
    relaxed = Rules(require_preparation=False)
    check_can_open(Phase.PLANNING, set(), relaxed, **NOT_TOLD)
    with pytest.raises(RuleViolation):
        check_can_open(Phase.DISCUSSION, set(), relaxed, **NOT_TOLD)


def test_only_a_finished_meeting_cannot_be_cancelled():
    assert _allowed(check_can_cancel) == set(ALL_PHASES) - {Phase.CONSENSUS, Phase.CANCELLED}


def test_the_end_of_a_debate():
    assert after_debate(Phase.DEBATE, 1, True, True) is Phase.CONSENSUS
    assert after_debate(Phase.DEBATE, 2, True, True) is Phase.VOTE
    with pytest.raises(RuleViolation, match="no options"):
        after_debate(Phase.DEBATE, 0, True, True)
    with pytest.raises(RuleViolation, match="Quorum"):
        after_debate(Phase.DEBATE, 1, False, True)
    with pytest.raises(RuleViolation, match="originator"):
        after_debate(Phase.DEBATE, 1, True, False)
    assert _allowed(after_debate, 1, True, True) == {Phase.DEBATE}


def test_the_end_of_a_vote():
    assert after_vote(Phase.VOTE, clear_winner=True) is Phase.CONSENSUS
    assert after_vote(Phase.VOTE, clear_winner=False) is Phase.DEBATE
    assert _allowed(after_vote, clear_winner=True) == {Phase.VOTE}


# --- Dates ----------------------------------------------------------------------------


def test_a_meeting_at_the_moment_its_planning_began_is_refused():
    """Kills `starts_at <= triggered_at` -> `<`."""
    with pytest.raises(RuleViolation, match="after its planning"):
        check_date(
            MeetingKind.ASSEMBLY_MOOT,
            MOMENT,
            MOMENT,
            None,
            RULES,
            "Europe/London",
            scheduled_at=MOMENT,
        )
    later = MOMENT + timedelta(minutes=1)
    check = check_date(
        MeetingKind.ASSEMBLY_MOOT, MOMENT, later, None, RULES, "Europe/London", scheduled_at=MOMENT
    )
    assert check.days_after_trigger == 0 and not check.explanation_required


@pytest.mark.parametrize(
    ("kind", "limit"),
    [
        (MeetingKind.ASSEMBLY_MOOT, 14),
        (MeetingKind.THING_OF_ASSEMBLIES, 21),
        (MeetingKind.PARTY_THING, 21),
    ],
)
def test_the_limit_day_is_allowed_and_the_day_after_needs_a_reason(kind, limit):
    """Kills `days > limit` -> `>=`, and each kind's limit swapped."""
    assert date_limit_days(kind, RULES) == limit
    on_limit = MOMENT + timedelta(days=limit)
    check = check_date(kind, MOMENT, on_limit, None, RULES, "Europe/London", scheduled_at=MOMENT)
    assert (check.days_after_trigger, check.limit_days, check.explanation_required) == (
        limit,
        limit,
        False,
    )
    after = MOMENT + timedelta(days=limit + 1)
    with pytest.raises(RuleViolation, match=f"{limit + 1} days"):
        check_date(kind, MOMENT, after, None, RULES, "Europe/London", scheduled_at=MOMENT)
    with pytest.raises(RuleViolation, match=f"{limit + 1} days"):
        check_date(kind, MOMENT, after, "   ", RULES, "Europe/London", scheduled_at=MOMENT)
    explained = check_date(
        kind, MOMENT, after, "The hall is closed", RULES, "Europe/London", scheduled_at=MOMENT
    )
    assert explained.explanation_required


def test_a_party_conference_has_no_date_limit():
    assert date_limit_days(MeetingKind.PARTY_CONFERENCE, RULES) is None
    far = MOMENT + timedelta(days=400)
    check = check_date(
        MeetingKind.PARTY_CONFERENCE, MOMENT, far, None, RULES, "Europe/London", scheduled_at=MOMENT
    )
    assert not check.explanation_required and check.limit_days is None


def test_days_are_counted_between_dates_in_the_party_timezone():
    """23:30 UTC on the 2nd is already the 3rd in Tokyo: the day count follows the zone."""
    triggered = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    starts = datetime(2026, 11, 15, 23, 30, tzinfo=UTC)
    london = check_date(
        MeetingKind.ASSEMBLY_MOOT,
        triggered,
        starts,
        None,
        RULES,
        "Europe/London",
        scheduled_at=triggered,
    )
    assert london.days_after_trigger == 14
    with pytest.raises(RuleViolation, match="15 days"):
        check_date(
            MeetingKind.ASSEMBLY_MOOT,
            triggered,
            starts,
            None,
            RULES,
            "Asia/Tokyo",
            scheduled_at=triggered,
        )


def test_the_originators_unavailable_day_is_refused():
    check_originator_available(date(2026, 11, 3), {date(2026, 11, 4)})
    with pytest.raises(RuleViolation, match="2026-11-04"):
        check_originator_available(date(2026, 11, 4), {date(2026, 11, 4)})


def test_shares_are_written_as_people_write_them():
    """Kills `_percent`'s whole-number test changed: 15.5% is not written "31%", and a
    share too large for six digits is written in full."""
    raised = Rules(minimum_quorum_share=Fraction(31, 200))
    assert "15.5% of 40" in moot_quorum(40, None, raised).basis.render("en")
    with pytest.raises(
        RuleViolation, match=r"between 15.5% and 100% of its active members; 1000000% is not"
    ):
        validate_own_quorum(Fraction(10_000), raised)


def test_rules_accept_their_smallest_and_largest_values_and_nothing_beyond():
    """Kills `< 1` -> `<= 1` / `< 2` for the quorum sizes and the petition share's bounds
    (`0 <` -> `0 <=`, `<= 1` -> `< 1` or `<= 2`) in `Rules.__post_init__`."""
    Rules(small_assembly_quorum=1, large_assembly_population=1)
    Rules(petition_share=Fraction(1))
    Rules(petition_share=Fraction(1, 1000))
    for bad in (
        {"small_assembly_quorum": 0},
        {"large_assembly_population": 0},
        {"petition_share": Fraction(0)},
        {"petition_share": Fraction(101, 100)},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Rules(**bad)
