from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.constitution.quorum import (
    AssemblyPresence,
    count_present_members,
    moot_quorum,
    thing_quorum_reached,
    validate_own_quorum,
)
from harmony_matrix.errors import RuleViolation

RULES = Rules()


@pytest.mark.parametrize(
    ("active", "own", "needed", "reachable"),
    [
        (0, None, 4, False),
        (3, None, 4, False),  # fewer than 4: told it cannot reach quorum
        (4, None, 4, True),
        (20, None, 4, True),  # 15% of 20 is exactly 3, but up to 30 the quorum is 4
        (30, None, 4, True),  # "greater than 30": 30 itself is still 4
        (31, None, 5, True),  # ceil(4.65)
        (34, None, 6, True),  # ceil(5.1)
        (40, None, 6, True),  # exactly 6.0 - no float error may push it to 7
        (100, None, 15, True),
        (101, None, 16, True),
        (1000, None, 150, True),
        (31, Fraction(20, 100), 7, True),  # own quorum: ceil(6.2)
        (40, Fraction(15, 100), 6, True),  # own quorum at the floor
        (40, Fraction(1), 40, True),
        (20, Fraction(50, 100), 4, True),  # own quorum applies only above 30
    ],
)
def test_moot_quorum_table(active, own, needed, reachable):
    quorum = moot_quorum(active, own, RULES)
    assert quorum.needed == needed
    assert quorum.reachable is reachable
    assert quorum.active_population == active


@pytest.mark.parametrize(
    "share", [Fraction(14, 100), Fraction(0), Fraction(149, 1000), Fraction(101, 100)]
)
def test_own_quorum_below_15_percent_or_above_everyone_is_refused(share):
    with pytest.raises(RuleViolation) as caught:
        validate_own_quorum(share, RULES)
    assert "15%" in str(caught.value.message)
    if share > 1:
        with pytest.raises(RuleViolation):
            moot_quorum(50, share, RULES)
    else:  # an own quorum below the minimum gives way to the minimum
        assert moot_quorum(50, share, RULES).needed == 8


def test_quorum_explains_itself():
    assert "4" in str(moot_quorum(12, None, RULES).basis)
    assert str(moot_quorum(40, None, RULES).basis) == (
        "Quorum is 6: 15% of 40 active members, rounded up."
    )
    assert "own quorum of 20%" in str(moot_quorum(40, Fraction(1, 5), RULES).basis)


def test_configured_rules_change_the_numbers():
    rules = Rules(
        small_assembly_quorum=5, large_assembly_population=50, minimum_quorum_share=Fraction(1, 5)
    )
    assert moot_quorum(50, None, rules).needed == 5
    assert moot_quorum(51, None, rules).needed == 11
    with pytest.raises(ValueError, match="15%"):
        Rules(minimum_quorum_share=Fraction(1, 10))
    # The party raised its minimum to 20%: an assembly's older 15% gives way to it.
    raised = Rules(minimum_quorum_share=Fraction(1, 5))
    assert moot_quorum(40, Fraction(15, 100), raised).needed == 8


@given(st.integers(min_value=31, max_value=100_000), st.integers(min_value=15, max_value=100))
def test_large_quorum_is_the_smallest_count_reaching_the_share(active, percent):
    needed = moot_quorum(active, Fraction(percent, 100), RULES).needed
    assert needed * 100 >= percent * active
    assert (needed - 1) * 100 < percent * active


@given(st.integers(min_value=0, max_value=10_000))
def test_quorum_never_below_four_nor_below_fifteen_percent(active):
    needed = moot_quorum(active, None, RULES).needed
    assert needed >= 4
    assert needed * 100 >= 15 * active or active <= 30


def test_thing_counts_shared_members_for_each_assembly():
    # Ana (1) is in both assemblies; present with 2, 3 (in A) and 4, 5 (in B).
    a_members, b_members = {1, 2, 3, 9}, {1, 4, 5, 8}
    present = [1, 2, 3, 4, 5, 1]
    assert count_present_members(present, a_members) == 3
    assert count_present_members(present, b_members) == 3
    quorum = moot_quorum(10, None, RULES)  # 4
    below = {"a": AssemblyPresence(quorum, 3), "b": AssemblyPresence(quorum, 4)}
    assert not thing_quorum_reached(below)
    both = {"a": AssemblyPresence(quorum, 4), "b": AssemblyPresence(quorum, 4)}
    assert thing_quorum_reached(both)
    assert not thing_quorum_reached({})
