import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmony_matrix.constitution.interpretations import Rules
from harmony_matrix.constitution.petitions import PetitionProgress, petition_threshold


@pytest.mark.parametrize(
    ("members", "threshold"),
    [(0, 1), (1, 1), (6, 1), (7, 2), (20, 3), (21, 4), (100, 15), (101, 16), (1000, 150)],
)
def test_threshold_is_fifteen_percent_rounded_up(members, threshold):
    assert petition_threshold(members, Rules()) == threshold


@given(st.integers(min_value=1, max_value=1_000_000))
def test_threshold_is_exact(members):
    threshold = petition_threshold(members, Rules())
    assert threshold * 100 >= 15 * members > (threshold - 1) * 100 or threshold == 1


def test_progress():
    assert not PetitionProgress(2, 3).reached
    assert PetitionProgress(2, 3).missing == 1
    assert PetitionProgress(3, 3).reached
    assert PetitionProgress(5, 3).missing == 0
