"""Benchmark the ballot CSV reader against the csv module and numpy.loadtxt on one file.

It writes one seeded ballot file (10 options, one digit per cell, a few blank cells:
the case that used to leave the fast path) of about ``--mb`` megabytes, then reads it in
a fresh child process per reader, so each peak RSS is that reader's alone:

- ``harmony``: ``parse_ballots(path.read_bytes())`` (the fast path, blanks included);
- ``harmony-slow``: the csv-module path Harmony falls back to (``_parse_slow``);
- ``csv-module``: the bare peer, ``csv.reader`` into an int8 array, no checks;
- ``numpy-loadtxt``: ``np.loadtxt(..., dtype=np.int8)`` (blanks read as 0).

It reports seconds and peak RSS, and the ratios that matter: time against the csv
module, peak RSS against the file size (the target: under 2x). Nothing is asserted; the
figures go to bench/results/ballot_csv_bench.json (git-ignored).

    .venv/bin/python bench/ballot_csv_bench.py              # 200 MB, about a minute
    .venv/bin/python bench/ballot_csv_bench.py --mb 20      # quicker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = 10
READERS = ("harmony", "harmony-slow", "csv-module", "numpy-loadtxt")


def write_file(path: Path, megabytes: float, blanks: int) -> int:
    """A ballot file of about ``megabytes`` MB with ``blanks`` blank cells; its ballots."""
    rows = int(megabytes * 1_000_000 / (2 * OPTIONS))
    rng = np.random.default_rng(2026)
    table = np.full((rows, 2 * OPTIONS), ord(","), dtype=np.uint8)
    table[:, 0::2] = rng.integers(1, 6, size=(rows, OPTIONS), dtype=np.uint8) + ord("0")
    table[:, -1] = ord("\n")
    data = bytearray(table.tobytes())
    del table
    # A blank cell: drop the digit of column 2 in a few rows (the row gets shorter).
    for row in sorted(rng.choice(rows, size=blanks, replace=False).tolist(), reverse=True):
        del data[row * 2 * OPTIONS + 2]
    header = ",".join(f"Option {i}" for i in range(OPTIONS)).encode() + b"\n"
    with path.open("wb") as handle:
        handle.write(header)
        handle.write(data)
    return rows


def child(reader: str, path: Path) -> None:
    """Read the file once with ``reader``; print seconds, ballots and peak RSS (bytes)."""
    started = time.perf_counter()
    if reader in ("harmony", "harmony-slow"):
        from harmony_matrix.voting.ballot_csv import _parse_slow, parse_ballots

        parse = parse_ballots if reader == "harmony" else _parse_slow
        ballots = len(parse(path.read_bytes())[1])
    elif reader == "csv-module":
        import csv
        from array import array

        scores = array("b")
        with path.open(newline="", encoding="utf-8") as handle:
            rows = csv.reader(handle)
            next(rows)
            for row in rows:
                scores.extend([int(cell) if cell else 0 for cell in row])
        ballots = len(scores) // OPTIONS
    else:
        table = np.loadtxt(
            path, delimiter=",", skiprows=1, dtype=np.int8, converters=lambda s: s or 0
        )
        ballots = len(table)
    seconds = time.perf_counter() - started
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's over exec).
    status = Path("/proc/self/status").read_text()
    peak = int(status.split("VmHWM:")[1].split()[0]) * 1024
    print(json.dumps({"seconds": seconds, "ballots": ballots, "peak_rss": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200.0)
    parser.add_argument("--blanks", type=int, default=1)
    parser.add_argument("--readers", default=",".join(READERS))
    parser.add_argument("--child", nargs=2, metavar=("READER", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ballots.csv"
        rows = write_file(path, args.mb, args.blanks)
        size = path.stat().st_size
        print(f"{path.name}: {size / 1e6:.0f} MB, {rows} ballots x {OPTIONS}, {args.blanks} blank")
        results = {}
        for reader in args.readers.split(","):
            done = subprocess.run(
                [sys.executable, __file__, "--child", reader, str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[reader] = json.loads(done.stdout)
            assert results[reader]["ballots"] == rows, (reader, results[reader])
    base = results.get("csv-module")
    print(f"{'reader':<15}{'seconds':>9}{'vs csv':>9}{'peak MB':>9}{'x file':>8}")
    for reader, found in results.items():
        ratio = f"{found['seconds'] / base['seconds']:.3f}" if base else "-"
        print(
            f"{reader:<15}{found['seconds']:>9.2f}{ratio:>9}"
            f"{found['peak_rss'] / 1e6:>9.0f}{found['peak_rss'] / size:>8.2f}"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    report = {"file_bytes": size, "ballots": rows, "blanks": args.blanks, "results": results}
    (out / "ballot_csv_bench.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
