"""STAR voting (Score Then Automatic Runoff), counted the way Harmony's constitution reads it.

The rule (DESIGN.md section 5; sources in recipes/star.md) is the *current official
protocol* of the Equal Vote Coalition, as BetterVoting implements it
(``packages/backend/src/Tabulators/Star.ts``):

    "Scoring round: two tied -> head-to-head; more than two tied or an even head-to-head
    -> most five-star ratings (advancing one at a time while one has strictly more), then
    random. Runoff: head-to-head, then higher total score, then most five-star ratings,
    then random."

Blank scores count 0. When five-star ratings narrow a tie of three or more down to two
options for one place, the protocol does *not* go back to head-to-head: the next step is
the lot.

Harmony never draws lots (interpretation 6, "Clear winner"): "If every possible lot
outcome gives the same winner, that winner stands; otherwise there is no clear winner,
and the meeting returns to debate and votes again." So wherever the protocol would draw,
:func:`tabulate` follows every possible draw.

Counting is vectorised with NumPy: the ballots are held one row per option (int8), so
totals, five-star counts and each head-to-head comparison are single passes over
contiguous memory. Head-to-head counts are only computed for the options that need them
(tied options and finalists), never as a full matrix.

Every step of the count is recorded as a :class:`Step`: a stable ``kind``, JSON-ready
``params`` and a translatable :meth:`Step.message`. The kinds are listed in
:data:`STEP_KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import cast

import numpy as np
import numpy.typing as npt

from harmony_matrix.i18n import Message, _, _n, list_of

MAX_SCORE = 5

#: Every :attr:`Step.kind`, in the order they can appear, with its ``params``.
STEP_KINDS: Mapping[str, str] = {
    "single_option": "option: the only option wins, with no runoff",
    "scores": "ballots, options (highest total first), totals (same order)",
    "finalists": "first, first_score, second, second_score: the two highest totals advance",
    "finalist_by_score": "option, score: the highest total advances alone; the rest is tied",
    "finalist_tie": "options, score, places (1 or 2): options tied for the finalist places",
    "finalist_tie_head_to_head": "winner, loser, winner_votes, loser_votes",
    "finalist_tie_head_to_head_even": "first, second, votes, equal",
    "finalist_tie_too_many": "count: more than two tied, so no head-to-head",
    "finalist_tie_five_star": "option, five_star: strictly most five-star ratings advances",
    "finalist_tie_five_star_shared": "options, five_star: both remaining places filled",
    "finalist_tie_five_star_even": "options, five_star: still tied",
    "finalists_after_tie": "first, second: the finalists once the tie is broken",
    "finalist_lot": "options, places: the protocol would draw a lot among these",
    "possible_runoff": (
        "first, second, first_votes, second_votes, equal, decided_by "
        "(preference|total_score|five_star|lot), winner (None when only a lot decides)"
    ),
    "finalist_lot_irrelevant": "winner: every possible draw gives this winner",
    "runoff": "winner, loser, winner_votes, loser_votes, equal",
    "runoff_tie": "first, second, votes, equal",
    "runoff_tie_score": "winner, loser, winner_score, loser_score",
    "runoff_tie_score_even": "first, second, score",
    "runoff_tie_five_star": "winner, loser, winner_five_star, loser_five_star",
    "runoff_tie_five_star_even": "first, second, five_star",
    "runoff_lot": "first, second: only a lot could decide",
    "winner_scored_less": (
        "winner, loser, winner_score, loser_score, winner_votes, loser_votes: "
        "why the runoff winner won with the lower total"
    ),
    "no_clear_winner": "options: every option some lot outcome would make the winner",
    "winner": "winner",
}


@dataclass(frozen=True)
class Step:
    """One step of the count: a stable ``kind`` with JSON-serialisable ``params``."""

    kind: str
    params: Mapping[str, object] = field(default_factory=dict, hash=False)

    def message(self) -> Message:
        """The step explained in words, translatable and rendered in the reader's language."""
        return _MESSAGES[self.kind](self.params)


@dataclass(frozen=True)
class StarResult:
    """The outcome of a STAR count and how it was reached.

    ``finalists`` is empty when only a lot could choose them (the steps then show every
    possible pair); ``runoff`` is then None too. ``winner`` is None exactly when
    ``no_clear_winner`` is True. ``runoff`` maps each finalist to the ballots that
    score it higher; ``runoff_equal`` counts the ballots that score both the same (kept
    apart, so that an option may be called anything, "equal" included).
    """

    options: tuple[str, ...]
    ballots: int
    totals: tuple[int, ...]
    five_star: tuple[int, ...]
    finalists: tuple[str, ...]
    runoff: Mapping[str, int] | None
    runoff_equal: int | None
    winner: str | None
    no_clear_winner: bool
    steps: tuple[Step, ...]

    def to_json(self, language: str = "en") -> dict[str, object]:
        """A plain-JSON record of the result, with each step's text in ``language``."""
        return {
            "options": list(self.options),
            "ballots": self.ballots,
            "totals": dict(zip(self.options, self.totals, strict=True)),
            "five_star": dict(zip(self.options, self.five_star, strict=True)),
            "finalists": list(self.finalists),
            "runoff": dict(self.runoff) if self.runoff is not None else None,
            "runoff_equal": self.runoff_equal,
            "winner": self.winner,
            "no_clear_winner": self.no_clear_winner,
            "steps": [
                {
                    "kind": step.kind,
                    "params": _plain(step.params),
                    "text": step.message().render(language),
                }
                for step in self.steps
            ],
        }

    def explain(self, language: str = "en") -> list[str]:
        """One line per step, in ``language``: the explanation a person reads."""
        return [step.message().render(language) for step in self.steps]


def tabulate(scores: npt.NDArray[np.integer], options: Sequence[str]) -> StarResult:
    """Count STAR ballots: ``scores`` has one row per ballot and one column per option.

    Raises ValueError for anything but a 2-D integer array of scores 0..5 whose columns
    match ``options``, and for empty or duplicate names.
    """
    names = _checked_options(options)
    count = _Count(names, _by_option(scores, len(names)))
    if len(names) == 1:
        only = [Step("single_option", {"option": names[0]})]
        return count.result((names[0],), None, None, {0}, only)
    steps = [count.scores_step()]
    scoring = _scoring_round(count, steps)
    if scoring.lot_pool:
        winners = _every_draw(count, scoring, steps)
        return count.result((), None, None, winners, steps)
    first, second = scoring.advanced
    outcome = count.runoff(first, second)
    steps.extend(_runoff_steps(count, outcome))
    runoff = {names[first]: outcome.first_votes, names[second]: outcome.second_votes}
    finalists = (names[first], names[second])
    return count.result(finalists, runoff, outcome.equal, outcome.winners, steps)


# --- Input -------------------------------------------------------------------------------


def _checked_options(options: Sequence[str]) -> tuple[str, ...]:
    """The option names; the caller must make them distinct (they key the results)."""
    names = tuple(options)
    if not names:
        raise ValueError("a STAR count needs at least one option")
    if any(not isinstance(name, str) or not name for name in names):
        raise ValueError("option names must be non-empty strings")
    if len(set(names)) != len(names):
        raise ValueError(f"option names must be distinct: {list(names)}")
    return names


def _by_option(scores: npt.NDArray[np.integer], n_options: int) -> npt.NDArray[np.int8]:
    """The scores as one contiguous int8 row per option, after checking them.

    One row per option makes every per-option sum and every pairwise comparison a pass
    over contiguous memory: about five times faster than reducing over the ballot axis.
    """
    array = np.asarray(scores)
    if array.ndim != 2 or array.shape[1] != n_options:
        raise ValueError(f"scores must have shape (ballots, {n_options}), not {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"scores must be integers, not {array.dtype}")
    if array.size and (array.min() < 0 or array.max() > MAX_SCORE):
        raise ValueError(f"scores must be whole numbers from 0 to {MAX_SCORE}")
    return np.ascontiguousarray(array.T, dtype=np.int8)


# --- The count ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Runoff:
    """A runoff between two finalists, with the tie-breaks the protocol would apply."""

    first: int
    second: int
    first_votes: int
    second_votes: int
    equal: int
    winner: int | None
    decided_by: str  # "preference", "total_score", "five_star" or "lot"

    @property
    def winners(self) -> set[int]:
        """Who can win: one finalist, or either when only a lot could decide."""
        return {self.first, self.second} if self.winner is None else {self.winner}


class _Count:
    """The per-option figures of one election, and head-to-head counts on demand."""

    def __init__(self, names: tuple[str, ...], by_option: npt.NDArray[np.int8]) -> None:
        self.names = names
        self.by_option = by_option
        self.ballots = int(by_option.shape[1])
        self.totals = tuple(int(t) for t in by_option.sum(axis=1, dtype=np.int64))
        self.five_star = tuple(int(c) for c in np.count_nonzero(by_option == MAX_SCORE, axis=1))
        self._preferred: dict[tuple[int, int], int] = {}

    def preferred(self, a: int, b: int) -> int:
        """How many ballots score option ``a`` higher than option ``b``."""
        if (a, b) not in self._preferred:
            self._preferred[a, b] = int(np.count_nonzero(self.by_option[a] > self.by_option[b]))
        return self._preferred[a, b]

    def runoff(self, first: int, second: int) -> _Runoff:
        """ "The finalist preferred on more ballots wins (equal scores count for neither);
        a runoff tie -> higher total score -> more five-star ratings -> lot."
        """
        for_first, for_second = self.preferred(first, second), self.preferred(second, first)
        equal = self.ballots - for_first - for_second
        criteria = (
            ("preference", for_first, for_second),
            ("total_score", self.totals[first], self.totals[second]),
            ("five_star", self.five_star[first], self.five_star[second]),
        )
        for criterion, of_first, of_second in criteria:
            if of_first != of_second:
                winner = first if of_first > of_second else second
                return _Runoff(first, second, for_first, for_second, equal, winner, criterion)
        return _Runoff(first, second, for_first, for_second, equal, None, "lot")

    def scores_step(self) -> Step:
        order = sorted(range(len(self.names)), key=lambda i: -self.totals[i])
        return Step(
            "scores",
            {
                "ballots": self.ballots,
                "options": [self.names[i] for i in order],
                "totals": [self.totals[i] for i in order],
            },
        )

    def result(
        self,
        finalists: tuple[str, ...],
        runoff: Mapping[str, int] | None,
        runoff_equal: int | None,
        winners: set[int],
        steps: list[Step],
    ) -> StarResult:
        """The result; a winner only if every possible lot outcome gives the same one."""
        if len(winners) == 1:
            winner: str | None = self.names[next(iter(winners))]
            steps.append(Step("winner", {"winner": winner}))
        else:
            winner = None
            options = [self.names[i] for i in sorted(winners)]
            steps.append(Step("no_clear_winner", {"options": options}))
        return StarResult(
            options=self.names,
            ballots=self.ballots,
            totals=self.totals,
            five_star=self.five_star,
            finalists=finalists,
            runoff=runoff,
            runoff_equal=runoff_equal,
            winner=winner,
            no_clear_winner=winner is None,
            steps=tuple(steps),
        )


@dataclass
class _ScoringRound:
    """Finalists chosen without a lot (in the order they advanced), and the options a
    lot would choose the remaining places from (empty when no lot is needed)."""

    advanced: list[int]
    lot_pool: list[int]


def _scoring_round(count: _Count, steps: list[Step]) -> _ScoringRound:
    """ "The two highest are finalists. Tie for a finalist place: exactly two tied ->
    head-to-head; more than two tied, or an even head-to-head -> most five-star ratings
    (advancing one at a time while one has strictly more), then a lot."
    """
    totals, names = count.totals, count.names
    order = sorted(range(len(names)), key=lambda i: -totals[i])
    if len(order) == 2 or totals[order[1]] != totals[order[2]]:
        first, second = order[:2]
        steps.append(
            Step(
                "finalists",
                {
                    "first": names[first],
                    "first_score": totals[first],
                    "second": names[second],
                    "second_score": totals[second],
                },
            )
        )
        return _ScoringRound([first, second], [])
    advanced = []
    if totals[order[0]] > totals[order[1]]:
        advanced.append(order[0])
        steps.append(
            Step("finalist_by_score", {"option": names[order[0]], "score": totals[order[0]]})
        )
    tied = [i for i in order if totals[i] == totals[order[1]]]
    steps.append(
        Step(
            "finalist_tie",
            {
                "options": [names[i] for i in tied],
                "score": totals[tied[0]],
                "places": 2 - len(advanced),
            },
        )
    )
    if len(tied) == 2:
        head_to_head = _head_to_head(count, tied[0], tied[1], steps)
        if head_to_head is not None:
            return _advance(count, [*advanced, head_to_head], steps)
    else:
        steps.append(Step("finalist_tie_too_many", {"count": len(tied)}))
    return _five_star_tiebreak(count, advanced, tied, steps)


def _head_to_head(count: _Count, a: int, b: int, steps: list[Step]) -> int | None:
    """The one of two tied options preferred on more ballots, or None if even."""
    for_a, for_b = count.preferred(a, b), count.preferred(b, a)
    if for_a == for_b:
        steps.append(
            Step(
                "finalist_tie_head_to_head_even",
                {
                    "first": count.names[a],
                    "second": count.names[b],
                    "votes": for_a,
                    "equal": count.ballots - for_a - for_b,
                },
            )
        )
        return None
    winner, loser = (a, b) if for_a > for_b else (b, a)
    steps.append(
        Step(
            "finalist_tie_head_to_head",
            {
                "winner": count.names[winner],
                "loser": count.names[loser],
                "winner_votes": max(for_a, for_b),
                "loser_votes": min(for_a, for_b),
            },
        )
    )
    return winner


def _five_star_tiebreak(
    count: _Count, advanced: list[int], tied: list[int], steps: list[Step]
) -> _ScoringRound:
    """Advance tied options "one at a time while one has strictly more" five-star
    ratings; whatever is still tied after that goes to the lot, never back to
    head-to-head (recipes/star.md, "A detail that decides many tie cases")."""
    names, five_star = count.names, count.five_star
    pool = sorted(tied, key=lambda i: -five_star[i])
    advanced = list(advanced)
    # At least two options are left in the pool while a place is open: a tie for both
    # places involves three or more options, a tie for one place two or more.
    while len(advanced) < 2 and five_star[pool[0]] > five_star[pool[1]]:
        steps.append(
            Step(
                "finalist_tie_five_star",
                {"option": names[pool[0]], "five_star": five_star[pool[0]]},
            )
        )
        advanced.append(pool.pop(0))
    if len(advanced) == 2:
        return _advance(count, advanced, steps)
    pool = [i for i in pool if five_star[i] == five_star[pool[0]]]
    params = {"options": [names[i] for i in pool], "five_star": five_star[pool[0]]}
    places = 2 - len(advanced)
    if len(pool) == places:
        steps.append(Step("finalist_tie_five_star_shared", params))
        return _advance(count, advanced + pool, steps)
    steps.append(Step("finalist_tie_five_star_even", params))
    steps.append(Step("finalist_lot", {"options": params["options"], "places": places}))
    return _ScoringRound(advanced, pool)


def _advance(count: _Count, finalists: list[int], steps: list[Step]) -> _ScoringRound:
    first, second = finalists
    steps.append(
        Step("finalists_after_tie", {"first": count.names[first], "second": count.names[second]})
    )
    return _ScoringRound(finalists, [])


def _every_draw(count: _Count, scoring: _ScoringRound, steps: list[Step]) -> set[int]:
    """Follow every way the lot for the finalist places could fall; return every option
    that one of them makes the winner.

    Stops as soon as two different winners are possible: the answer is then "no clear
    winner" whatever the other draws give. This keeps a huge tie linear: with both
    places open and three or more in the pool, no option is in every pair, so the
    second pair already settles it (a 5000-way tie would otherwise be 12.5 million
    runoffs).
    """
    places = 2 - len(scoring.advanced)
    winners: set[int] = set()
    for drawn in combinations(scoring.lot_pool, places):
        if len(winners) > 1:
            break
        first, second = [*scoring.advanced, *drawn]
        outcome = count.runoff(first, second)
        winners |= outcome.winners
        steps.append(
            Step(
                "possible_runoff",
                {
                    "first": count.names[first],
                    "second": count.names[second],
                    "first_votes": outcome.first_votes,
                    "second_votes": outcome.second_votes,
                    "equal": outcome.equal,
                    "decided_by": outcome.decided_by,
                    "winner": None if outcome.winner is None else count.names[outcome.winner],
                },
            )
        )
    if len(winners) == 1:
        (only,) = winners
        steps.append(Step("finalist_lot_irrelevant", {"winner": count.names[only]}))
    return winners


def _runoff_steps(count: _Count, outcome: _Runoff) -> list[Step]:
    """The runoff between known finalists, one step per tie-break the protocol uses."""
    names, totals, five_star = count.names, count.totals, count.five_star
    first, second = outcome.first, outcome.second
    if outcome.decided_by == "preference":
        return _runoff_won(count, outcome)
    pair = {"first": names[first], "second": names[second]}
    steps = [Step("runoff_tie", {**pair, "votes": outcome.first_votes, "equal": outcome.equal})]
    winner = outcome.winner
    loser = second if winner == first else first
    if outcome.decided_by == "total_score":
        assert winner is not None
        steps.append(
            Step(
                "runoff_tie_score",
                {
                    "winner": names[winner],
                    "loser": names[loser],
                    "winner_score": totals[winner],
                    "loser_score": totals[loser],
                },
            )
        )
        return steps
    steps.append(Step("runoff_tie_score_even", {**pair, "score": totals[first]}))
    if outcome.decided_by == "five_star":
        assert winner is not None
        steps.append(
            Step(
                "runoff_tie_five_star",
                {
                    "winner": names[winner],
                    "loser": names[loser],
                    "winner_five_star": five_star[winner],
                    "loser_five_star": five_star[loser],
                },
            )
        )
        return steps
    steps.append(Step("runoff_tie_five_star_even", {**pair, "five_star": five_star[first]}))
    steps.append(Step("runoff_lot", pair))
    return steps


def _runoff_won(count: _Count, outcome: _Runoff) -> list[Step]:
    """A runoff decided by preferences; says why when the winner scored less in total."""
    names, totals = count.names, count.totals
    winner = outcome.winner
    assert winner is not None
    loser = outcome.second if winner == outcome.first else outcome.first
    params = {
        "winner": names[winner],
        "loser": names[loser],
        "winner_votes": max(outcome.first_votes, outcome.second_votes),
        "loser_votes": min(outcome.first_votes, outcome.second_votes),
    }
    steps = [Step("runoff", {**params, "equal": outcome.equal})]
    if totals[winner] < totals[loser]:
        scores = {"winner_score": totals[winner], "loser_score": totals[loser]}
        steps.append(Step("winner_scored_less", {**params, **scores}))
    return steps


def _plain(value: object) -> object:
    """``value`` with tuples as lists and mappings as dicts, as JSON would read it back."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --- Explanations ------------------------------------------------------------------------
# Each kind of step has one function building its message from the step's params. The
# msgids must stay literal in the calls to _() and _n() so that Babel extracts them.


def _names(params: Mapping[str, object], key: str = "options") -> Message:
    return list_of(cast(Sequence[str], params[key]))


def _ballots(count: object) -> Message:
    return _n("%(count)s ballot", "%(count)s ballots", cast(int, count))


def _ratings(count: object) -> Message:
    return _n("%(count)s five-star rating", "%(count)s five-star ratings", cast(int, count))


def _single_option(p: Mapping[str, object]) -> Message:
    return _("%(option)s is the only option, so it wins without a runoff.", option=p["option"])


def _scores(p: Mapping[str, object]) -> Message:
    options = cast(Sequence[str], p["options"])
    totals = cast(Sequence[int], p["totals"])
    listed = list_of(
        _("%(option)s (%(score)s)", option=option, score=score)
        for option, score in zip(options, totals, strict=True)
    )
    return _n(
        "Scoring round: %(count)s ballot counted. Total scores: %(totals)s.",
        "Scoring round: %(count)s ballots counted. Total scores: %(totals)s.",
        cast(int, p["ballots"]),
        totals=listed,
    )


def _finalists(p: Mapping[str, object]) -> Message:
    if p["first_score"] == p["second_score"]:
        return _(
            "%(first)s and %(second)s share the highest total score (%(score)s) "
            "and both go to the runoff.",
            first=p["first"],
            second=p["second"],
            score=p["first_score"],
        )
    return _(
        "%(first)s (%(first_score)s) and %(second)s (%(second_score)s) have the two "
        "highest total scores and go to the runoff.",
        **p,
    )


def _finalist_by_score(p: Mapping[str, object]) -> Message:
    return _("%(option)s has the highest total score (%(score)s) and goes to the runoff.", **p)


def _finalist_tie(p: Mapping[str, object]) -> Message:
    if p["places"] == 2:
        return _(
            "%(options)s are tied on %(score)s for both finalist places.",
            options=_names(p),
            score=p["score"],
        )
    return _(
        "%(options)s are tied on %(score)s for the second finalist place.",
        options=_names(p),
        score=p["score"],
    )


def _finalist_tie_head_to_head(p: Mapping[str, object]) -> Message:
    return _(
        "Head to head, %(winner)s is scored higher than %(loser)s on %(winner_votes)s and "
        "%(loser)s higher than %(winner)s on %(loser_votes)s, so %(winner)s goes to the "
        "runoff.",
        winner=p["winner"],
        loser=p["loser"],
        winner_votes=_ballots(p["winner_votes"]),
        loser_votes=_ballots(p["loser_votes"]),
    )


def _finalist_tie_head_to_head_even(p: Mapping[str, object]) -> Message:
    return _(
        "Head to head, %(first)s and %(second)s are each scored higher than the other on "
        "%(votes)s (equal on %(equal)s), so they are still tied.",
        first=p["first"],
        second=p["second"],
        votes=_ballots(p["votes"]),
        equal=_ballots(p["equal"]),
    )


def _finalist_tie_too_many(p: Mapping[str, object]) -> Message:
    return _(
        "With %(count)s options tied (more than two), the protocol skips the head-to-head "
        "comparison and goes to five-star ratings.",
        **p,
    )


def _finalist_tie_five_star(p: Mapping[str, object]) -> Message:
    return _(
        "%(option)s has the most five-star ratings among the tied options (%(five_star)s) "
        "and goes to the runoff.",
        **p,
    )


def _finalist_tie_five_star_shared(p: Mapping[str, object]) -> Message:
    return _(
        "%(options)s have the most five-star ratings among the tied options (%(five_star)s "
        "each) and both go to the runoff.",
        options=_names(p),
        five_star=p["five_star"],
    )


def _finalist_tie_five_star_even(p: Mapping[str, object]) -> Message:
    return _(
        "%(options)s each have %(five_star)s, so they are still tied.",
        options=_names(p),
        five_star=_ratings(p["five_star"]),
    )


def _finalists_after_tie(p: Mapping[str, object]) -> Message:
    return _("The finalists are %(first)s and %(second)s.", **p)


def _finalist_lot(p: Mapping[str, object]) -> Message:
    if p["places"] == 2:
        return _(
            "The protocol would now draw lots to choose two of %(options)s for the runoff. "
            "Harmony never draws lots, so every possible draw is considered.",
            options=_names(p),
        )
    return _(
        "The protocol would now draw a lot to choose one of %(options)s for the runoff. "
        "Harmony never draws lots, so every possible draw is considered.",
        options=_names(p),
    )


def _possible_runoff(p: Mapping[str, object]) -> Message:
    pair = {"first": p["first"], "second": p["second"], "winner": p["winner"]}
    if p["decided_by"] == "preference":
        return _(
            "If the finalists were %(first)s and %(second)s, %(winner)s would win the runoff "
            "(%(first)s scored higher on %(first_votes)s, %(second)s on %(second_votes)s).",
            first_votes=_ballots(p["first_votes"]),
            second_votes=_ballots(p["second_votes"]),
            **pair,
        )
    if p["decided_by"] == "total_score":
        return _(
            "If the finalists were %(first)s and %(second)s, the runoff would be tied and "
            "%(winner)s would win on total score.",
            **pair,
        )
    if p["decided_by"] == "five_star":
        return _(
            "If the finalists were %(first)s and %(second)s, the runoff and their total "
            "scores would be tied, and %(winner)s would win on five-star ratings.",
            **pair,
        )
    return _(
        "If the finalists were %(first)s and %(second)s, they would be tied in every "
        "respect, and only a lot could decide between them.",
        first=p["first"],
        second=p["second"],
    )


def _finalist_lot_irrelevant(p: Mapping[str, object]) -> Message:
    return _(
        "%(winner)s wins whichever way the lot would fall, so %(winner)s is the clear "
        "winner and no lot is needed.",
        **p,
    )


def _runoff(p: Mapping[str, object]) -> Message:
    return _(
        "Runoff between %(winner)s and %(loser)s: %(winner)s is scored higher on "
        "%(winner_votes)s, %(loser)s on %(loser_votes)s, and they are scored equally on "
        "%(equal)s. %(winner)s wins the runoff.",
        winner=p["winner"],
        loser=p["loser"],
        winner_votes=_ballots(p["winner_votes"]),
        loser_votes=_ballots(p["loser_votes"]),
        equal=_ballots(p["equal"]),
    )


def _runoff_tie(p: Mapping[str, object]) -> Message:
    return _(
        "Runoff between %(first)s and %(second)s: each is scored higher than the other on "
        "%(votes)s (equal on %(equal)s), so the runoff is tied.",
        first=p["first"],
        second=p["second"],
        votes=_ballots(p["votes"]),
        equal=_ballots(p["equal"]),
    )


def _runoff_tie_score(p: Mapping[str, object]) -> Message:
    return _(
        "A runoff tie goes to the higher total score: %(winner)s has %(winner_score)s, "
        "%(loser)s %(loser_score)s. %(winner)s wins.",
        **p,
    )


def _runoff_tie_score_even(p: Mapping[str, object]) -> Message:
    return _("%(first)s and %(second)s also have the same total score (%(score)s).", **p)


def _runoff_tie_five_star(p: Mapping[str, object]) -> Message:
    return _(
        "The tie then goes to the most five-star ratings: %(winner)s has %(winner_five_star)s, "
        "%(loser)s %(loser_five_star)s. %(winner)s wins.",
        **p,
    )


def _runoff_tie_five_star_even(p: Mapping[str, object]) -> Message:
    return _(
        "%(first)s and %(second)s also have the same number of five-star ratings (%(five_star)s).",
        **p,
    )


def _runoff_lot(p: Mapping[str, object]) -> Message:
    return _(
        "Only a lot could now decide between %(first)s and %(second)s, and Harmony never "
        "draws lots.",
        **p,
    )


def _winner_scored_less(p: Mapping[str, object]) -> Message:
    return _(
        "Why %(winner)s won although %(loser)s scored more (%(loser_score)s against "
        "%(winner_score)s): the total scores only choose the two finalists; the runoff then "
        "counts voters, and more voters scored %(winner)s higher than %(loser)s "
        "(%(winner_votes)s against %(loser_votes)s).",
        **p,
    )


def _no_clear_winner(p: Mapping[str, object]) -> Message:
    return _(
        "No clear winner: depending on a lot, %(options)s could each win. Harmony draws no "
        "lots, so the debate and vote are repeated.",
        options=_names(p),
    )


def _winner(p: Mapping[str, object]) -> Message:
    return _("%(winner)s is the winner.", **p)


_MESSAGES: Mapping[str, Callable[[Mapping[str, object]], Message]] = {
    "single_option": _single_option,
    "scores": _scores,
    "finalists": _finalists,
    "finalist_by_score": _finalist_by_score,
    "finalist_tie": _finalist_tie,
    "finalist_tie_head_to_head": _finalist_tie_head_to_head,
    "finalist_tie_head_to_head_even": _finalist_tie_head_to_head_even,
    "finalist_tie_too_many": _finalist_tie_too_many,
    "finalist_tie_five_star": _finalist_tie_five_star,
    "finalist_tie_five_star_shared": _finalist_tie_five_star_shared,
    "finalist_tie_five_star_even": _finalist_tie_five_star_even,
    "finalists_after_tie": _finalists_after_tie,
    "finalist_lot": _finalist_lot,
    "possible_runoff": _possible_runoff,
    "finalist_lot_irrelevant": _finalist_lot_irrelevant,
    "runoff": _runoff,
    "runoff_tie": _runoff_tie,
    "runoff_tie_score": _runoff_tie_score,
    "runoff_tie_score_even": _runoff_tie_score_even,
    "runoff_tie_five_star": _runoff_tie_five_star,
    "runoff_tie_five_star_even": _runoff_tie_five_star_even,
    "runoff_lot": _runoff_lot,
    "winner_scored_less": _winner_scored_less,
    "no_clear_winner": _no_clear_winner,
    "winner": _winner,
}
