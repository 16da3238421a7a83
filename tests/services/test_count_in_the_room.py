"""The room's explanation of a STAR count says what the count says: the options' names
are isolated for right-to-left readers, and nothing else about a step changes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from harmony_matrix.services.meeting_announcements import _steps
from harmony_matrix.voting.star import tabulate

ISOLATES = str.maketrans("", "", "\u2068\u2069")
OPTIONS = ("Meet monthly", "Meet weekly", "اجتماع شهري")


def _room_text(scores: list[list[int]]) -> tuple[list[str], list[str]]:
    result = tabulate(np.array(scores, dtype=np.int8), OPTIONS)
    stored = result.to_json()["steps"]
    in_the_room = [message.render("en").translate(ISOLATES) for message in _steps(stored)]
    return in_the_room, result.explain("en")


def test_a_possible_runoff_keeps_how_it_would_be_decided():
    """Two ballots tie three options on total scores: the count explains each possible
    pair of finalists, one of them decided by preference, not by lot."""
    in_the_room, counted = _room_text([[5, 4, 4], [5, 4, 4], [0, 5, 5], [5, 0, 0]])
    assert in_the_room == counted
    assert any("would win the runoff" in line for line in in_the_room)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(min_value=0, max_value=5), min_size=3, max_size=3),
        min_size=1,
        max_size=6,
    )
)
def test_the_room_says_what_the_count_says(scores):
    in_the_room, counted = _room_text(scores)
    assert in_the_room == counted
