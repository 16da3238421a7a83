"""Reading a ballot form: which options were scored, with what, and what is wrong.

Pure (no request, no database), so every odd form a browser or an attacker can send is
tested directly. The form has one field ``score-N`` per option number N with a value
"0".."5"; a group left blank is simply absent. Fields with other names (the CSRF token,
a submit button) are ignored; a ``score-`` field for an option the ballot does not have
is an error, since only a tampered form sends one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from multidict import MultiMapping

from harmony_matrix.services.ballots import BallotOption

FIELD_PREFIX = "score-"
#: ASCII only: "٣" and "³" are digits to str.isdigit but not scores.
SCORE = re.compile(r"[0-5]")
OPTION_NUMBER = re.compile(r"[1-9][0-9]{0,5}")
LOWEST, HIGHEST = 0, 5


class Problem(StrEnum):
    #: Every group was left blank: there is nothing to cast (reported on each group).
    NOTHING_SCORED = "nothing_scored"
    #: A value other than one of "0".."5", or two values for one option.
    NOT_A_SCORE = "not_a_score"
    #: A ``score-`` field for an option the ballot does not have.
    UNKNOWN_OPTION = "unknown_option"


@dataclass(frozen=True)
class ScoreError:
    #: The group the error is shown on (and linked to from the error summary).
    option: BallotOption
    problem: Problem


@dataclass(frozen=True)
class ScoredForm:
    #: Every valid answer, by option number; a blank group is absent.
    answers: dict[int, int] = field(default_factory=dict)
    #: In the order the voter sees the groups, at most one per group.
    errors: tuple[ScoreError, ...] = ()

    def scores(self, options: tuple[BallotOption, ...]) -> dict[int, int]:
        """What is cast: every option, a blank counting as 0 (STAR's rule)."""
        return {option.number: self.answers.get(option.number, LOWEST) for option in options}


def read_scores(
    form: MultiMapping[Any], options: tuple[BallotOption, ...], *, require_a_score: bool = True
) -> ScoredForm:
    """The answers in ``form`` for a ballot with ``options`` (in the voter's order).

    ``require_a_score``: a form with every group blank is an error, on every group.
    Showing the form again (to change an answer, or in another language) does not ask it.
    """
    by_number = {option.number: option for option in options}
    answers: dict[int, int] = {}
    problems: dict[int, Problem] = {}
    unknown = False
    for key in _score_keys(form):
        suffix = key[len(FIELD_PREFIX) :]
        option = by_number.get(int(suffix)) if OPTION_NUMBER.fullmatch(suffix) else None
        if option is None:
            unknown = True
            continue
        values = [value for value in form.getall(key) if value != ""]
        if not values:
            continue  # sent blank: the same as not chosen
        if len(values) > 1 or not isinstance(values[0], str) or not SCORE.fullmatch(values[0]):
            problems[option.number] = Problem.NOT_A_SCORE
            continue
        answers[option.number] = int(values[0])
    errors = [ScoreError(by_number[n], problem) for n, problem in problems.items()]
    if options and unknown:
        errors.append(ScoreError(options[0], Problem.UNKNOWN_OPTION))
    elif require_a_score and not answers and not problems:
        # Every group blank: each says so (decision 68), as each is a way to fix it.
        errors.extend(ScoreError(option, Problem.NOTHING_SCORED) for option in options)
    position = {option.number: index for index, option in enumerate(options)}
    errors.sort(key=lambda error: position[error.option.number])
    return ScoredForm(answers, tuple(_one_per_group(errors)))


def _score_keys(form: MultiMapping[Any]) -> list[str]:
    # A multidict repeats a key once per value; each key is read once, with getall.
    return list(dict.fromkeys(key for key in form if key.startswith(FIELD_PREFIX)))


def _one_per_group(errors: list[ScoreError]) -> list[ScoreError]:
    shown: set[int] = set()
    kept = []
    for error in errors:
        if error.option.number not in shown:
            shown.add(error.option.number)
            kept.append(error)
    return kept
