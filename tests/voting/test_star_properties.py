"""Properties of Harmony's STAR count, its agreement with starvote, and its explanations.

Strategies lean towards small elections, where ties (and so the tie-break protocol and
the no-lot rule) are common; the starvote comparison filters ties out, because starvote
follows another tie-break protocol and raises on any tie with ``tiebreaker=None``.
"""

from __future__ import annotations

import json
from itertools import permutations

import numpy as np
import pytest
import starvote
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harmony_matrix.voting.star import STEP_KINDS, StarResult, tabulate

NAMES = ("Ash", "Birch", "Cedar", "Damson", "Elm", "Fir")


@st.composite
def elections(draw, min_options: int = 2, max_options: int = 5, max_ballots: int = 8):
    """A score array (ballots x options) and option names, built so that every kind of
    tie comes up often (see the strategies below)."""
    n_options = draw(st.integers(min_options, max_options))
    kind = draw(st.sampled_from([_sparse, _blocs, _level]))
    scores = draw(kind(n_options, max_ballots))
    return scores, list(NAMES[:n_options])


@st.composite
def _sparse(draw, n_options: int, max_ballots: int) -> np.ndarray:
    """Few ballots, using only some of the six scores."""
    n_ballots = draw(st.integers(1, max_ballots))
    cells = st.sampled_from(draw(st.lists(st.integers(0, 5), min_size=2, unique=True)))
    return draw(arrays(np.int8, (n_ballots, n_options), elements=cells, fill=st.nothing()))


@st.composite
def _blocs(draw, n_options: int, max_ballots: int) -> np.ndarray:
    """A few blocs of identical ballots, like factions."""
    row = st.lists(st.integers(0, 5), min_size=n_options, max_size=n_options)
    blocs = draw(st.lists(st.tuples(row, st.integers(1, 3)), min_size=1, max_size=4))
    return np.array([r for r, size in blocs for _ in range(size)], dtype=np.int8)


@st.composite
def _level(draw, n_options: int, max_ballots: int) -> np.ndarray:
    """Options level on total score: each is another's scores in a different order (same
    total and five-star count, another head-to-head), sometimes with a 5 and a 0 spread
    into 3 and 2 (same total, one five-star rating fewer); perhaps led by one option
    that scores one more than them on some ballots, so that they tie for second place."""
    n_ballots = draw(st.integers(2, max_ballots))
    scores = st.lists(st.integers(0, 5), min_size=n_ballots, max_size=n_ballots)
    base = draw(scores.filter(lambda column: len(set(column)) > 1))
    columns = []
    if n_options > 2 and draw(st.booleans()):  # a leader; min(base) < 5 as base varies
        columns.append([v + draw(st.integers(0, 1)) if v < 5 else 5 for v in base])
        columns[0][base.index(min(base))] = min(base) + 1
    shuffler = draw(st.randoms(use_true_random=False))
    while len(columns) < n_options:
        level = shuffler.sample(base, len(base))
        if 5 in level and 0 in level and draw(st.booleans()):
            level[level.index(5)], level[level.index(0)] = 3, 2
        columns.append(level)
    return np.array(columns, dtype=np.int8).T.copy()


def _by_name(result: StarResult, values: tuple[int, ...]) -> dict[str, int]:
    return dict(zip(result.options, values, strict=True))


# --- Agreement with starvote on elections without ties ----------------------------------


def _no_tie_anywhere(scores: np.ndarray) -> bool:
    """No tie at the top-three boundary of the scoring round nor in the runoff, so that
    no tie-break protocol is involved (starvote's and Harmony's differ)."""
    totals = sorted(scores.sum(axis=0).tolist(), reverse=True)
    if len(totals) > 2 and totals[1] == totals[2]:
        return False
    order = np.argsort(-scores.sum(axis=0), kind="stable")[:2]
    a, b = scores[:, order[0]], scores[:, order[1]]
    return totals[0] != totals[1] and int((a > b).sum()) != int((b > a).sum())


@settings(max_examples=300)
@given(
    arrays(
        np.int8,
        st.tuples(st.integers(1, 60), st.integers(2, 6)),
        elements=st.integers(0, 5),
    )
)
def test_agrees_with_starvote_when_nothing_is_tied(scores):
    assume(_no_tie_anywhere(scores))
    names = list(NAMES[: scores.shape[1]])
    ballots = [dict(zip(names, row, strict=True)) for row in scores.tolist()]
    expected = starvote.election(starvote.star, ballots, tiebreaker=None, verbosity=0)
    result = tabulate(scores, names)
    assert [result.winner] == expected
    assert not result.no_clear_winner


# --- Against a literal reading of the protocol with an explicit lot ---------------------


def _protocol_with_lot(scores: np.ndarray, lot: tuple[int, ...]) -> tuple[int, frozenset[int]]:
    """The winner and finalists under the protocol as BetterVoting codes it, with the lot
    given: ``lot`` ranks the options, earlier wins a draw. Written plainly and
    independently of the code under test."""
    n = scores.shape[1]
    total = scores.sum(axis=0).tolist()
    five = (scores == 5).sum(axis=0).tolist()

    def prefer(a: int, b: int) -> int:
        return int((scores[:, a] > scores[:, b]).sum())

    by_score = sorted(range(n), key=lambda c: (-total[c], lot.index(c)))
    if n <= 2 or total[by_score[1]] != total[by_score[2]]:
        finalists = by_score[:2]
    else:
        finalists = [by_score[0]] if total[by_score[0]] > total[by_score[1]] else []
        tied = [c for c in by_score if total[c] == total[by_score[1]]]
        if len(tied) == 2 and prefer(tied[0], tied[1]) != prefer(tied[1], tied[0]):
            a, b = tied
            finalists.append(a if prefer(a, b) > prefer(b, a) else b)
        else:
            tied.sort(key=lambda c: (-five[c], lot.index(c)))
            while len(finalists) < 2 and five[tied[0]] > five[tied[1]]:
                finalists.append(tied.pop(0))
            tied = [c for c in tied if five[c] == five[tied[0]]]
            while len(finalists) < 2:
                finalists.append(tied.pop(0))  # the lot: earliest in ``lot`` first
    a, b = finalists
    for key in (lambda c, o: prefer(c, o), lambda c, o: total[c], lambda c, o: five[c]):
        if key(a, b) != key(b, a):
            return (a if key(a, b) > key(b, a) else b), frozenset(finalists)
    return min(a, b, key=lot.index), frozenset(finalists)


@settings(max_examples=500)
@given(elections(max_options=5))
def test_winner_is_the_same_for_every_lot_or_there_is_none(election):
    """Interpretation 6: a winner only if every possible lot outcome gives the same one.
    Checked by running the protocol with every ordering of the options as the lot."""
    scores, names = election
    outcomes = {_protocol_with_lot(scores, lot) for lot in permutations(range(len(names)))}
    winners = {winner for winner, _finalists in outcomes}
    finalist_sets = {finalists for _winner, finalists in outcomes}
    result = tabulate(scores, names)
    if len(winners) == 1:
        assert result.winner == names[winners.pop()]
    else:
        assert result.winner is None and result.no_clear_winner
    if len(finalist_sets) == 1:
        assert set(result.finalists) == {names[i] for i in finalist_sets.pop()}
    else:
        assert result.finalists == ()


# --- Properties of the rule -------------------------------------------------------------


@given(elections(), st.randoms(use_true_random=False))
def test_order_of_ballots_changes_nothing(election, random):
    scores, names = election
    order = list(range(scores.shape[0]))
    random.shuffle(order)
    assert tabulate(scores[order], names) == tabulate(scores, names)


@given(elections(), st.randoms(use_true_random=False))
def test_order_of_options_changes_nothing(election, random):
    scores, names = election
    order = list(range(len(names)))
    random.shuffle(order)
    shuffled = tabulate(scores[:, order], [names[i] for i in order])
    result = tabulate(scores, names)
    assert shuffled.winner == result.winner
    assert shuffled.no_clear_winner == result.no_clear_winner
    assert set(shuffled.finalists) == set(result.finalists)
    assert shuffled.runoff == result.runoff
    assert _by_name(shuffled, shuffled.totals) == _by_name(result, result.totals)
    assert _by_name(shuffled, shuffled.five_star) == _by_name(result, result.five_star)


@given(elections(), st.integers(0, 5))
def test_a_ballot_scoring_every_option_the_same_changes_nothing(election, score):
    scores, names = election
    more = np.vstack([scores, np.full((1, len(names)), score, dtype=np.int8)])
    before, after = tabulate(scores, names), tabulate(more, names)
    assert after.ballots == before.ballots + 1
    assert (after.winner, after.no_clear_winner) == (before.winner, before.no_clear_winner)
    assert after.finalists == before.finalists
    if before.runoff is None:
        assert after.runoff is None
    else:
        assert after.runoff == before.runoff
        assert after.runoff_equal == before.runoff_equal + 1


@given(elections(), st.data())
def test_an_option_everyone_scores_five_wins(election, data):
    scores, names = election
    assume(scores.shape[0] > 0)
    favourite = data.draw(st.integers(0, len(names) - 1))
    scores = scores.copy()
    scores[:, favourite] = 5
    others = [i for i in range(len(names)) if i != favourite]
    assume(not any((scores[:, i] == 5).all() for i in others))
    assert tabulate(scores, names).winner == names[favourite]


@given(elections())
def test_the_winner_has_one_of_the_two_highest_totals(election):
    scores, names = election
    result = tabulate(scores, names)
    second_highest = sorted(result.totals, reverse=True)[1]
    if result.winner is not None:
        assert result.totals[names.index(result.winner)] >= second_highest
    for finalist in result.finalists:
        assert result.totals[names.index(finalist)] >= second_highest


@given(elections())
def test_a_condorcet_winner_that_reaches_the_runoff_wins(election):
    """STAR is not Condorcet-consistent, but a finalist preferred to every other option
    (on more ballots than the reverse) must win the runoff."""
    scores, names = election
    n = len(names)
    beats = [
        [
            int((scores[:, a] > scores[:, b]).sum()) > int((scores[:, b] > scores[:, a]).sum())
            for b in range(n)
        ]
        for a in range(n)
    ]
    condorcet = [a for a in range(n) if all(beats[a][b] for b in range(n) if b != a)]
    assume(condorcet)
    result = tabulate(scores, names)
    assume(names[condorcet[0]] in result.finalists)
    assert result.winner == names[condorcet[0]]


@given(elections(min_options=2, max_options=2, max_ballots=12))
def test_two_options_the_one_preferred_on_more_ballots_wins(election):
    scores, names = election
    for_first = int((scores[:, 0] > scores[:, 1]).sum())
    for_second = int((scores[:, 1] > scores[:, 0]).sum())
    result = tabulate(scores, names)
    assert result.runoff == {names[0]: for_first, names[1]: for_second}
    assert result.runoff_equal == scores.shape[0] - for_first - for_second
    if for_first != for_second:
        assert result.winner == names[0 if for_first > for_second else 1]
    else:
        totals = scores.sum(axis=0).tolist()
        if totals[0] != totals[1]:
            assert result.winner == names[0 if totals[0] > totals[1] else 1]


@given(elections(min_options=1, max_options=6))
def test_result_is_consistent_and_json_ready(election):
    scores, names = election
    result = tabulate(scores, names)
    assert (result.winner is None) == result.no_clear_winner
    assert list(result.totals) == scores.sum(axis=0).tolist()
    assert list(result.five_star) == (scores == 5).sum(axis=0).tolist()
    assert len(result.finalists) in {0, 1, 2} and len(set(result.finalists)) == len(
        result.finalists
    )
    if result.runoff is not None:
        assert sum(result.runoff.values()) + result.runoff_equal == result.ballots
    assert all(step.kind in STEP_KINDS for step in result.steps)
    assert result.steps[-1].kind == ("no_clear_winner" if result.winner is None else "winner")
    record = result.to_json()
    assert json.loads(json.dumps(record)) == record
    assert len(result.explain("fr")) == len(result.steps)


# --- Edge cases -------------------------------------------------------------------------


def test_a_single_option_wins_even_with_no_ballots():
    result = tabulate(np.zeros((0, 1), dtype=np.int8), ["Amy"])
    assert result.winner == "Amy"
    assert result.finalists == ("Amy",)
    assert result.runoff is None
    assert [step.kind for step in result.steps] == ["single_option", "winner"]


@pytest.mark.parametrize("n_options", [2, 3, 10])
def test_no_ballots_means_no_clear_winner(n_options):
    names = [f"Option {i}" for i in range(n_options)]
    result = tabulate(np.zeros((0, n_options), dtype=np.int8), names)
    assert result.winner is None and result.no_clear_winner
    assert result.totals == (0,) * n_options


def test_all_equal_ballots_give_no_clear_winner():
    result = tabulate(np.full((4, 3), 3, dtype=np.int8), ["A", "B", "C"])
    assert result.no_clear_winner
    assert result.finalists == ()


def test_a_lot_for_the_second_place_can_be_irrelevant():
    """A beats B and C head to head; B and C tie for second in every respect."""
    scores = np.array([[5, 1, 0], [4, 0, 1], [3, 2, 2]], dtype=np.int8)
    result = tabulate(scores, ["A", "B", "C"])
    assert result.winner == "A"
    assert result.finalists == ()
    kinds = [step.kind for step in result.steps]
    assert kinds.count("possible_runoff") == 2
    assert kinds[-2:] == ["finalist_lot_irrelevant", "winner"]


def test_more_than_two_tied_go_to_five_star_ratings_not_head_to_head():
    """B, C and D tie for second; B beats C head to head, but with three tied the
    protocol goes straight to five-star ratings, where D leads."""
    scores = np.array([[1, 2, 1, 1], [5, 0, 4, 3], [2, 3, 1, 5], [3, 4, 3, 0]], dtype=np.int8)
    result = tabulate(scores, ["A", "B", "C", "D"])
    assert result.totals == (11, 9, 9, 9)
    assert result.finalists == ("A", "D")
    assert [step.kind for step in result.steps][1:5] == [
        "finalist_by_score",
        "finalist_tie",
        "finalist_tie_too_many",
        "finalist_tie_five_star",
    ]


def test_five_star_ratings_narrowing_a_tie_to_two_lead_to_the_lot_not_head_to_head():
    """B, C and D tie for second; B and C have one five-star rating each, D none. B beats
    C head to head, but the protocol does not go back to head-to-head: only a lot could
    choose between B and C, and A beats B while C beats A."""
    scores = np.array(
        [[3, 3, 3, 3], [3, 1, 3, 0], [2, 5, 3, 4], [0, 2, 0, 1], [3, 2, 5, 2], [4, 1, 0, 4]],
        dtype=np.int8,
    )
    result = tabulate(scores, ["A", "B", "C", "D"])
    assert result.totals == (15, 14, 14, 14)
    assert result.no_clear_winner
    assert result.finalists == ()
    lot = next(step for step in result.steps if step.kind == "finalist_lot")
    assert lot.params == {"options": ["B", "C"], "places": 1}
    assert result.steps[-1].params == {"options": ["A", "C"]}


@pytest.mark.parametrize(
    ("scores", "options", "problem"),
    [
        (np.zeros((2, 3), dtype=np.int8), ["A", "B"], "shape"),
        (np.zeros(3, dtype=np.int8), ["A", "B", "C"], "shape"),
        (np.zeros((2, 2), dtype=np.float64), ["A", "B"], "integers"),
        (np.zeros((2, 2), dtype=bool), ["A", "B"], "integers"),
        (np.array([[6, 0]], dtype=np.int8), ["A", "B"], "0 to 5"),
        (np.array([[-1, 0]], dtype=np.int8), ["A", "B"], "0 to 5"),
        (np.zeros((1, 2), dtype=np.int8), ["A", "A"], "distinct"),
        (np.zeros((1, 2), dtype=np.int8), ["A", ""], "non-empty"),
        (np.zeros((1, 0), dtype=np.int8), [], "at least one"),
    ],
)
def test_bad_input_is_refused(scores, options, problem):
    with pytest.raises(ValueError, match=problem):
        tabulate(scores, options)


def test_accepts_other_integer_types_and_non_contiguous_arrays():
    scores = np.array([[5, 1, 0, 9], [4, 0, 1, 9], [0, 2, 5, 9]], dtype=np.int64)[:, :3]
    assert tabulate(scores, ["A", "B", "C"]) == tabulate(scores.astype(np.int8), ["A", "B", "C"])


# --- Explanations -----------------------------------------------------------------------


def test_explains_why_the_runoff_winner_won_with_the_lower_total():
    # Allison is loved by a few, Bill liked a little more than her by most.
    scores = np.array([[5, 0]] * 4 + [[2, 3]] * 6, dtype=np.int8)
    result = tabulate(scores, ["Allison", "Bill"])
    assert result.totals == (32, 18)
    assert result.winner == "Bill"
    assert result.runoff == {"Allison": 4, "Bill": 6}
    assert result.runoff_equal == 0
    assert result.explain() == [
        "Scoring round: 10 ballots counted. Total scores: Allison (32) and Bill (18).",
        "Allison (32) and Bill (18) have the two highest total scores and go to the runoff.",
        "Runoff between Bill and Allison: Bill is scored higher on 6 ballots, Allison on "
        "4 ballots, and they are scored equally on 0 ballots. Bill wins the runoff.",
        "Why Bill won although Allison scored more (32 against 18): the total scores only "
        "choose the two finalists; the runoff then counts voters, and more voters scored "
        "Bill higher than Allison (6 against 4).",
        "Bill is the winner.",
    ]


def test_explains_a_runoff_tie_broken_by_five_star_ratings():
    scores = np.array([[5, 4], [1, 2], [0, 0]], dtype=np.int8)
    lines = tabulate(scores, ["A", "B"]).explain()
    assert lines[2] == (
        "Runoff between A and B: each is scored higher than the other on 1 ballot "
        "(equal on 1 ballot), so the runoff is tied."
    )
    assert lines[3:] == [
        "A and B also have the same total score (6).",
        "The tie then goes to the most five-star ratings: A has 1, B 0. A wins.",
        "A is the winner.",
    ]


def test_explains_no_clear_winner():
    lines = tabulate(np.array([[5, 3], [3, 5]], dtype=np.int8), ["A", "B"]).explain()
    assert lines[-2:] == [
        "Only a lot could now decide between A and B, and Harmony never draws lots.",
        "No clear winner: depending on a lot, A and B could each win. Harmony draws no "
        "lots, so the debate and vote are repeated.",
    ]


def test_to_json_keys_and_types():
    scores = np.array([[5, 0, 1]] * 4 + [[2, 3, 1]] * 6, dtype=np.int8)
    record = tabulate(scores, ["Allison", "Bill", "Carmen"]).to_json()
    assert record["winner"] == "Bill"
    assert record["no_clear_winner"] is False
    assert record["finalists"] == ["Allison", "Bill"]
    assert record["totals"] == {"Allison": 32, "Bill": 18, "Carmen": 10}
    assert record["five_star"] == {"Allison": 4, "Bill": 0, "Carmen": 0}
    assert record["ballots"] == 10
    assert record["runoff"] == {"Allison": 4, "Bill": 6}
    assert record["runoff_equal"] == 0
    steps = record["steps"]
    assert isinstance(steps, list)
    assert [s["kind"] for s in steps] == [
        "scores",
        "finalists",
        "runoff",
        "winner_scored_less",
        "winner",
    ]
    assert steps[0]["params"] == {
        "ballots": 10,
        "options": ["Allison", "Bill", "Carmen"],
        "totals": [32, 18, 10],
    }
    assert all(isinstance(s["text"], str) and s["text"] for s in steps)
    assert json.loads(json.dumps(record)) == record


def test_a_huge_tie_is_settled_without_trying_every_draw():
    """Thousands of options tied on everything: counting must stay fast (no quadratic or
    factorial enumeration of lots) and say there is no clear winner."""
    import numpy as np

    from harmony_matrix.voting.star import tabulate

    names = [f"Option {n}" for n in range(5000)]
    result = tabulate(np.ones((3, 5000), dtype=np.int8), names)
    assert result.winner is None and result.no_clear_winner
    possible = [step for step in result.steps if step.kind == "possible_runoff"]
    assert len(possible) <= 3  # stopped as soon as two winners were possible


def test_an_option_may_be_called_equal():
    """The ballots scoring both finalists the same are kept apart from the finalists, so
    no option name is reserved (an option called "equal" once could not be counted)."""
    scores = np.array([[5, 1], [4, 2], [3, 3]], dtype=np.int8)
    result = tabulate(scores, ["equal", "B"])
    assert result.winner == "equal"
    assert result.runoff == {"equal": 2, "B": 0}
    assert result.runoff_equal == 1
    assert tabulate(scores, ["runoff_equal", "B"]).to_json()["runoff"] == {
        "runoff_equal": 2,
        "B": 0,
    }
