"""bench/ballot_bench.py runs end to end at a tiny size and loses or doubles no ballot.

Only the counts are checked, never the timings (a test machine's speed says nothing).
On the backend under test: a SQLite file, or a throw-away database the bench creates
and drops on the test PostgreSQL server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from harmony_matrix.storage.database import normalise_url
from tests.conftest import POSTGRES_URL

ROOT = Path(__file__).resolve().parent.parent


def run_bench(script: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``bench/SCRIPT ARGS --out TMP_PATH`` from ``tmp_path``; it must succeed."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.slow  # two server processes and a vote: about 10 s
def test_the_ballot_bench_counts_every_ballot_once(tmp_path):
    backend = ["--sqlite"]
    if POSTGRES_URL:
        server = make_url(normalise_url(POSTGRES_URL)).set(database="postgres")
        backend = ["--postgres", server.render_as_string(hide_password=False)]
    args = [*backend, "--ballots", "3", "--concurrency", "1", "2"]
    result = run_bench("ballot_bench.py", tmp_path, *args)
    figures = json.loads((tmp_path / "ballot_bench.json").read_text())
    assert [level["concurrency"] for level in figures["levels"]] == [1, 2]
    expected = 0
    for level in figures["levels"]:
        expected += 3
        assert level["harmony"]["ok"] == level["bare"]["ok"] == 3
        assert level["stored_after"]["sealed"] == level["expected_sealed"] == expected
        assert level["stored_after"]["spent"] == expected
        assert level["stored_after"]["bare"] == level["expected_bare"] == expected
    final = figures["final"]
    assert final["receipts_given"] == final["distinct_receipts_given"] == 6
    assert final["counted"] == final["counted_in_result"] == 6
    assert (final["lost"], final["doubled"], final["closed"]) == (0, 0, 1)
    assert "MET" in result.stdout and "| concurrency |" in result.stdout
    markdown = (tmp_path / "ballot_bench.md").read_text()
    assert "| 2 |" in markdown


@pytest.mark.slow  # three `harmony run --only web` processes in turn and a vote: about 15 s
@pytest.mark.skipif(
    not POSTGRES_URL,
    reason="several web processes on one database: PostgreSQL (HARMONY_TEST_DATABASE_URL)",
)
def test_the_web_scaling_bench_spreads_the_casts_and_counts_each_once(tmp_path):
    server = make_url(normalise_url(POSTGRES_URL or "")).set(database="postgres")
    result = run_bench(
        "web_scaling_bench.py",
        tmp_path,
        *("--postgres", server.render_as_string(hide_password=False), "--ballots", "4"),
        *("--processes", "1", "2", "--concurrency", "2", "--wait-for-quiet", "0"),
    )
    figures = json.loads((tmp_path / "web_scaling_bench.json").read_text())
    runs = figures["runs"]
    assert [run["processes"] for run in runs] == [1, 2]
    # Each process's own access log shows the casts sent to it: two processes, two each.
    assert [run["casts_served"] for run in runs] == [[4], [2, 2]]
    assert [run["exit_statuses"] for run in runs] == [[0], [0, 0]]
    for expected, run in zip((4, 8), runs, strict=True):
        assert run["ok"] == run["requests"] == 4
        assert run["stored_after"]["sealed"] == run["stored_after"]["spent"] == expected
        assert run["expected_sealed"] == expected
    assert [line["processes"] for line in figures["scaling"]] == [1, 2]
    assert figures["scaling"][0]["ratio"] == 1.0
    assert [line["runs"] for line in figures["scaling"]] == [1, 1]
    final = figures["final"]
    assert final["receipts_given"] == final["distinct_receipts_given"] == 8
    assert final["counted"] == final["counted_in_result"] == 8
    assert (final["lost"], final["doubled"], final["closed"]) == (0, 0, 1)
    assert "MET" in result.stdout and "NOT met" not in result.stdout
    assert "| web processes |" in (tmp_path / "web_scaling_bench.md").read_text()
