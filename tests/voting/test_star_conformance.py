"""Harmony's STAR count against the public conformance cases (tests/data/star-cases/).

The expectation is each case's ``expected_no_lot``: the current official tie-breaker
protocol as BetterVoting implements it, where every possible lot outcome must give the
same winner (recipes/star.md). ``finalists`` there is null when only a lot could choose
them; Harmony then reports no finalists.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harmony_matrix.voting.star import tabulate

#: A copy of shared/star-cases (public data; provenance in its README.md), kept in the
#: repository so the suite never silently runs without it.
CASES = Path(__file__).resolve().parents[1] / "data" / "star-cases"
CASE_FILES = sorted(CASES.glob("*.json"))


def _ballots(case: dict, *, drop_abstentions: bool = False) -> list[list[int]]:
    """The ballots after the case's ``preprocess`` (BetterVoting's validation), if any:
    a ballot with any score outside the range is dropped and blanks count as ``null_as``.
    All-equal ballots are kept, as Harmony counts them, unless ``drop_abstentions``."""
    rules = case.get("preprocess")
    if not rules:
        return case["ballots"]
    low, high = rules.get("drop_ballot_if_any_score_outside", [0, 5])
    kept = []
    for ballot in case["ballots"]:
        if any(v is not None and not low <= v <= high for v in ballot):
            continue
        ballot = [rules.get("null_as", 0) if v is None else v for v in ballot]
        abstention = rules.get("all_equal_ballot_is_abstention") and len(set(ballot)) == 1
        if drop_abstentions and abstention:
            continue
        kept.append(ballot)
    return kept


def _count(case: dict, ballots: list[list[int]]):
    options = case["candidates"]
    scores = np.array(ballots, dtype=np.int8).reshape(len(ballots), len(options))
    return tabulate(scores, options)


def test_all_39_cases_are_present():
    assert len(CASE_FILES) == 39


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_case_matches_the_no_lot_expectation(path: Path):
    case = json.loads(path.read_text(encoding="utf-8"))
    expected = case["expected_no_lot"]
    result = _count(case, _ballots(case))
    assert result.winner == expected["winner"]
    assert result.no_clear_winner is expected["no_clear_winner"]
    if expected["finalists"] is not None:
        assert sorted(result.finalists) == sorted(expected["finalists"])
    else:
        assert result.finalists == ()
        assert result.runoff is None


@pytest.mark.parametrize(
    "path",
    [p for p in CASE_FILES if "preprocess" in json.loads(p.read_text(encoding="utf-8"))],
    ids=lambda p: p.stem,
)
def test_abstentions_change_no_outcome(path: Path):
    """BetterVoting drops all-equal ballots as abstentions; Harmony counts them. They add
    the same to every total and five-star count and prefer no one, so nothing changes
    but the ballot count and the runoff's "equal" count."""
    case = json.loads(path.read_text(encoding="utf-8"))
    dropped = _count(case, _ballots(case, drop_abstentions=True))
    kept = _count(case, _ballots(case, drop_abstentions=False))
    assert kept.ballots > dropped.ballots
    assert (kept.winner, kept.finalists) == (dropped.winner, dropped.finalists)
    assert kept.runoff is not None and dropped.runoff is not None
    for finalist in kept.finalists:
        assert kept.runoff[finalist] == dropped.runoff[finalist]
    assert kept.runoff_equal is not None and dropped.runoff_equal is not None
    assert kept.runoff_equal - dropped.runoff_equal == kept.ballots - dropped.ballots


def test_the_copy_matches_the_shared_suite_when_present():
    """tests/data/star-cases is a copy of shared/star-cases; keep them the same."""
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "star-cases"
    if not shared.is_dir():
        pytest.skip("shared/ is not beside this checkout")
    for path in sorted(shared.glob("*.json")):
        assert (CASES / path.name).read_bytes() == path.read_bytes(), path.name
    assert {p.name for p in CASE_FILES} == {p.name for p in shared.glob("*.json")}
