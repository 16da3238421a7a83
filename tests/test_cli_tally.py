"""`harmony tally FILE.csv [--format json|text]`: the contract other tools rely on."""

import json

import pytest

from tests.test_cli import harmony

# A scores higher in total (A 5+5+0+0+0 = 10... ) but B is preferred on more ballots.
WHY_B = "A,B,C\n5,4,0\n5,4,0\n0,1,5\n0,1,5\n0,1,0\n"


def write(tmp_path, content: str | bytes, name: str = "ballots.csv"):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def test_json_contract(tmp_path):
    result = harmony("tally", str(write(tmp_path, WHY_B)))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("winner", "no_clear_winner", "finalists", "totals", "runoff", "steps"):
        assert key in data
    assert data["totals"] == {"A": 10, "B": 11, "C": 10}
    assert data["winner"] == "B" and data["no_clear_winner"] is False
    assert isinstance(data["steps"], list) and data["steps"]


def test_text_is_an_explanation(tmp_path):
    result = harmony("tally", str(write(tmp_path, WHY_B)), "--format", "text")
    assert result.returncode == 0, result.stderr
    assert "B" in result.stdout and "11" in result.stdout
    french = harmony("--language", "fr", "tally", str(write(tmp_path, WHY_B)), "--format", "text")
    assert french.returncode == 0 and french.stdout != result.stdout


def test_blank_is_zero_and_receipts_are_not_options(tmp_path):
    blank = harmony("tally", str(write(tmp_path, "A,B\n5,\n,3\n4,4\n")))
    assert json.loads(blank.stdout)["totals"] == {"A": 9, "B": 7}
    published = "receipt,A,B\nAAAA-BBBB-CCCC,5,0\nDDDD-EEEE-FFFF,4,1\n"
    receipts = harmony("tally", str(write(tmp_path, published, "published.csv")))
    assert receipts.returncode == 0, receipts.stderr
    assert json.loads(receipts.stdout)["totals"] == {"A": 9, "B": 1}


@pytest.mark.parametrize(
    ("content", "row"),
    [
        ("", None),
        ("A,B\n", None),  # no ballots
        ("A,B\n5,0\n6,0\n", 3),  # out of range
        ("A,B\n5,0\n-1,0\n", 3),
        ("A,B\n5,0\n2.5,0\n", 3),  # not a whole number
        ("A,B\n5,0\nx,0\n", 3),
        ("A,B\n5,0\n1,2\n3\n", 4),  # ragged
        ("A,B\n5,0,1\n", 2),
    ],
)
def test_bad_files_exit_2_naming_the_row(tmp_path, content, row):
    result = harmony("tally", str(write(tmp_path, content)))
    assert result.returncode == 2
    assert result.stderr.strip() and not result.stdout
    if row is not None:
        assert str(row) in result.stderr


def test_missing_file(tmp_path):
    result = harmony("tally", str(tmp_path / "nothing.csv"))
    assert result.returncode == 2 and "There is no file" in result.stderr


def test_a_closed_pipe_is_not_an_error(tmp_path):
    import subprocess
    import sys

    # Thousands of options: far more output than a pipe buffers, so the write fails.
    names = [f"Option {n}" for n in range(5000)]
    big = ",".join(names) + "\n" + ",".join("1" for _ in names) + "\n"
    path = write(tmp_path, big)
    command = f"{sys.executable} -m harmony_matrix.cli tally {path} --format json | head -c 10"
    result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    assert result.stderr == "" and result.stdout == '{\n  "optio'


def test_an_option_named_equal_is_counted(tmp_path):
    result = harmony("tally", str(write(tmp_path, "equal,B\n5,0\n4,1\n")))
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["winner"] == "equal" and record["runoff"] == {"equal": 2, "B": 0}


def test_a_recount_never_drops_a_ballot(tmp_path):
    """A published row that lost its scores is an error naming its line, not a ballot
    fewer (it was counted as an empty line at the end)."""
    result = harmony("tally", str(write(tmp_path, "receipt,A,B\nabc,3,2\ndef\n")))
    assert result.returncode == 2 and result.stdout == ""
    assert "Row 3 has 1 cell" in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("1,2\n3,4\n", "no header row"),
        ("A,B\n1,2\n,\n", "Row 3 has no score at all"),
        ("A;B\n1;2\n", "semicolons"),
        ('A,B\n1,2\n"3,4\n', "Row 3 opens a quotation mark"),
    ],
)
def test_files_a_spreadsheet_makes_are_refused_by_name(tmp_path, content, expected):
    result = harmony("tally", str(write(tmp_path, content)))
    assert result.returncode == 2 and expected in result.stderr, result.stderr


def test_json_texts_in_the_chosen_language(tmp_path):
    path = str(write(tmp_path, "A,B\n5,0\n4,1\n"))
    english = json.loads(harmony("tally", path).stdout)
    french = json.loads(harmony("--language", "fr", "tally", path).stdout)
    assert [s["kind"] for s in french["steps"]] == [s["kind"] for s in english["steps"]]
    assert french["steps"][-1]["text"] != english["steps"][-1]["text"]
    assert (
        "gagn" in french["steps"][-1]["text"].lower()
        or "vainq" in french["steps"][-1]["text"].lower()
    )


def test_published_ballots_with_a_multi_line_option_recount(tmp_path):
    published = 'receipt,"1. Print,\nthen email",2. Email\nAAAA-BBBB-CCCC,5,0\nDDDD-EEEE-FFFF,4,1\n'
    result = harmony("tally", str(write(tmp_path, published)))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["totals"] == {"1. Print,\nthen email": 9, "2. Email": 1}
