"""Benchmark Harmony's STAR count against starvote on the same seeded elections.

For each size (10k, 100k and 1M ballots, 5 and 10 options) it times, in one process:
- Harmony from an int8 array: ``tabulate(scores, options)``;
- Harmony from a CSV file: ``parse_ballots(path.read_bytes())`` then ``tabulate``;
- starvote 2.1.6 (``tiebreaker=None``) on the same ballots as a list of dicts (building
  the dicts is not timed).
Times are the median of 3 runs (starvote at 1M ballots: 1 run). Peak memory is
tracemalloc's peak during one further, untimed run of each counter (the input itself,
array or dicts, is not included). Results go to bench/results/star_bench.json.

    .venv/bin/python bench/star_bench.py            # everything (about a minute)
    .venv/bin/python bench/star_bench.py --quick    # skip starvote at 1M ballots
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import starvote

from harmony_matrix.voting.ballot_csv import parse_ballots
from harmony_matrix.voting.star import StarResult, tabulate

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

SIZES = [(10_000, 5), (10_000, 10), (100_000, 5), (100_000, 10), (1_000_000, 5), (1_000_000, 10)]
RUNS = 3
SEED = 20_251_121
TARGETS = {
    "1M x 10 from an array under 100 ms": ("array_ms", 1_000_000, 10, 100.0),
    "1M x 10 from a CSV file under 1000 ms": ("csv_ms", 1_000_000, 10, 1000.0),
}
MIN_SPEEDUP_100K = 50.0


@dataclass
class Row:
    ballots: int
    options: int
    array_ms: float
    csv_ms: float
    starvote_ms: float | None
    starvote_runs: int
    ratio: float | None
    harmony_peak_mb: float
    starvote_peak_mb: float | None
    harmony_winner: str | None
    starvote_winner: str | None


def election(n_ballots: int, n_options: int, rng: np.random.Generator) -> np.ndarray:
    """Scores 0-5 around a different mean for each option, so that no two options are
    level: neither Harmony nor starvote needs a tie-break (starvote raises on ties)."""
    means = np.linspace(1.2, 3.8, n_options)
    rng.shuffle(means)
    raw = rng.normal(means, 1.6, size=(n_ballots, n_options))
    return np.clip(np.rint(raw), 0, 5).astype(np.int8)


def csv_bytes(scores: np.ndarray, names: list[str]) -> bytes:
    """The file as a publisher would write it: a header, one digit per cell."""
    rows, columns = scores.shape
    table = np.full((rows, 2 * columns), ord(","), dtype=np.uint8)
    table[:, 0::2] = scores + ord("0")
    table[:, -1] = ord("\n")
    return (",".join(names) + "\n").encode() + table.tobytes()


def timed(function: Callable[[], T], runs: int) -> tuple[float, T]:
    """Median wall time in milliseconds over ``runs`` calls, and the last result."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def peak_mb(function: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def starvote_winner(ballots: list[dict[str, int]]) -> str:
    try:
        return str(starvote.election(starvote.star, ballots, tiebreaker=None, verbosity=0)[0])
    except starvote.UnbreakableTieError:
        return "(tie)"


def measure(n_ballots: int, n_options: int, folder: Path, *, with_starvote: bool) -> Row:
    rng = np.random.default_rng([SEED, n_ballots, n_options])
    scores = election(n_ballots, n_options, rng)
    names = [f"Option {i + 1}" for i in range(n_options)]
    path = folder / f"ballots-{n_ballots}x{n_options}.csv"
    path.write_bytes(csv_bytes(scores, names))

    array_ms, result = timed(lambda: tabulate(scores, names), RUNS)

    def from_csv() -> StarResult:
        options, parsed = parse_ballots(path.read_bytes())
        return tabulate(parsed, options)

    csv_ms, from_file = timed(from_csv, RUNS)
    assert from_file == result, "the CSV file must count to the same result"
    harmony_peak = peak_mb(lambda: tabulate(scores, names))

    starvote_ms = starvote_peak = None
    winner = None
    runs = 0
    if with_starvote:
        ballots = [dict(zip(names, row, strict=True)) for row in scores.tolist()]
        runs = 1 if n_ballots >= 1_000_000 else RUNS
        starvote_ms, winner = timed(lambda: starvote_winner(ballots), runs)
        starvote_peak = peak_mb(lambda: starvote_winner(ballots))
        del ballots
    return Row(
        ballots=n_ballots,
        options=n_options,
        array_ms=round(array_ms, 2),
        csv_ms=round(csv_ms, 1),
        starvote_ms=None if starvote_ms is None else round(starvote_ms, 1),
        starvote_runs=runs,
        ratio=None if starvote_ms is None else round(starvote_ms / array_ms, 1),
        harmony_peak_mb=round(harmony_peak, 3),
        starvote_peak_mb=None if starvote_peak is None else round(starvote_peak, 3),
        harmony_winner=result.winner,
        starvote_winner=None if winner is None else str(winner),
    )


def table(rows: list[Row]) -> str:
    header = (
        "| ballots | options | harmony array ms | harmony CSV ms | starvote ms | ratio "
        "| harmony peak MB | starvote peak MB | winners agree |"
    )
    lines = [header, "|" + "---|" * 9]
    for r in rows:
        starvote_ms = "skipped" if r.starvote_ms is None else f"{r.starvote_ms:,.1f}"
        if r.starvote_runs == 1:
            starvote_ms += " (1 run)"
        lines.append(
            f"| {r.ballots:,} | {r.options} | {r.array_ms:.2f} | {r.csv_ms:.1f} | {starvote_ms} "
            f"| {'-' if r.ratio is None else f'{r.ratio:,.0f}x'} | {r.harmony_peak_mb:.3f} "
            f"| {'-' if r.starvote_peak_mb is None else f'{r.starvote_peak_mb:,.3f}'} "
            f"| {'-' if r.starvote_winner is None else r.starvote_winner == r.harmony_winner} |"
        )
    return "\n".join(lines)


def targets(rows: list[Row]) -> dict[str, bool | None]:
    found: dict[str, bool | None] = {}
    by_size = {(r.ballots, r.options): r for r in rows}
    for name, (field, ballots, options, limit) in TARGETS.items():
        found[name] = getattr(by_size[ballots, options], field) < limit
    ratio = by_size[100_000, 10].ratio
    found[f"100k x 10 at least {MIN_SPEEDUP_100K:.0f}x faster than starvote"] = (
        None if ratio is None else ratio >= MIN_SPEEDUP_100K
    )
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip starvote at 1M ballots")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n_ballots, n_options in SIZES:
            with_starvote = not (args.quick and n_ballots >= 1_000_000)
            rows.append(measure(n_ballots, n_options, Path(folder), with_starvote=with_starvote))
            print(f"  measured {n_ballots:,} x {n_options}", file=sys.stderr, flush=True)
    print(table(rows))
    met = targets(rows)
    print()
    for name, ok in met.items():
        print(f"- {name}: {'not measured' if ok is None else 'met' if ok else 'MISSED'}")
    output = ROOT / "bench" / "results" / "star_bench.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "starvote": getattr(starvote, "__version__", "2.1.6"),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "runs": RUNS,
        "seed": SEED,
        "rows": [asdict(r) for r in rows],
        "targets": met,
    }
    output.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {output.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
