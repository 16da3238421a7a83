"""Reading ballot CSV files: the format, every error with its row, and the fast path
agreeing with the csv-module path."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harmony_matrix.voting.ballot_csv import (
    BOM,
    BallotFileError,
    _parse_fast,
    _parse_slow,
    parse_ballots,
)

_EMPTY_ROW = (
    "Row %s is empty. Only the end of the file may have empty lines; each ballot needs a "
    "cell for every option."
)
_BLANK_ROW = (
    "Row %s has no score at all, only blank cells. Remove the row if it is not a ballot; "
    "a ballot that scores every option 0 is written with 0s."
)


def _scores(rows: list[list[int]]) -> np.ndarray:
    return np.array(rows, dtype=np.int8)


# --- Well-formed files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "options", "rows"),
    [
        (b"A,B,C\n1,2,3\n4,5,0\n", ["A", "B", "C"], [[1, 2, 3], [4, 5, 0]]),
        (b"A,B,C\n1,2,3\n4,5,0", ["A", "B", "C"], [[1, 2, 3], [4, 5, 0]]),
        (b"A,B,C\r\n1,2,3\r\n4,5,0\r\n", ["A", "B", "C"], [[1, 2, 3], [4, 5, 0]]),
        (BOM + b"A,B\r\n1,2\r\n", ["A", "B"], [[1, 2]]),
        (b"A,B\n1,2\n\n\n", ["A", "B"], [[1, 2]]),
        (b"A,B\r\n1,2\r\n\r\n", ["A", "B"], [[1, 2]]),
        (b"A,B,C\n1,,3\n,,0\n", ["A", "B", "C"], [[1, 0, 3], [0, 0, 0]]),
        (b"receipt,A,B\nabc,3,2\ndef,,1\n", ["A", "B"], [[3, 2], [0, 1]]),
        (b'receipt,A,B\r\n"a,b",3,2\r\n', ["A", "B"], [[3, 2]]),
        (b"equal,B\n1,2\n", ["equal", "B"], [[1, 2]]),
        (b"A,B\n1,\n,2\n", ["A", "B"], [[1, 0], [0, 2]]),
        (b"A,B\r\n1,\r\n,2\r\n", ["A", "B"], [[1, 0], [0, 2]]),
        (b"A,B\n  3 , 4\t\n", ["A", "B"], [[3, 4]]),
        (b" A , B \n1,2\n", ["A", "B"], [[1, 2]]),
        (b'"Smith, Jo",B\n1,2\n', ["Smith, Jo", "B"], [[1, 2]]),
        (b'"Two\nlines",B\n1,2\n', ["Two\nlines", "B"], [[1, 2]]),
        ("Zoë,Ångström\n5,0\n".encode(), ["Zoë", "Ångström"], [[5, 0]]),
        (b"Only\n5\n3", ["Only"], [[5], [3]]),
        (b'A,B\n"1","2"\n', ["A", "B"], [[1, 2]]),
        (b"A,B\n03,+2\n", ["A", "B"], [[3, 2]]),
        (b"A,B\n1,2\n3,4\n5,0\n", ["A", "B"], [[1, 2], [3, 4], [5, 0]]),
        (b"A,B\n1,2\r\n3,4\n", ["A", "B"], [[1, 2], [3, 4]]),  # mixed line endings
    ],
)
def test_reads_well_formed_files(data, options, rows):
    found_options, scores = parse_ballots(data)
    assert found_options == options
    assert scores.dtype == np.int8
    np.testing.assert_array_equal(scores, _scores(rows))


@pytest.mark.parametrize(
    "data",
    [
        b"A,B,C\n1,2,3\n4,5,0\n",
        b"A,B,C\n1,2,3\n4,5,0",
        b"A,B,C\r\n1,2,3\r\n4,5,0\r\n\r\n",
        b"A\n5\n3\n",
        b"A,B\n1,\n,2\n",
        b"A,B\r\n1,\r\n,2\r\n3,4",
        b'"Smith, Jo",B\n1,2\n',
        "Zoë,Ångström\n5,0\n".encode(),
    ],
)
def test_single_digit_files_take_the_fast_path(data):
    assert _parse_fast(data) is not None


# --- Errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "row", "text"),
    [
        (b"", 1, "The file is empty. Row 1 must name the options, one per column."),
        (BOM, 1, "The file is empty. Row 1 must name the options, one per column."),
        (b"\n1,2\n", 1, "Row 1 is empty. It must name the options, one per column."),
        (
            b"A,,C\n1,2,3\n",
            1,
            "Row 1, column 2: the option has no name. Every column needs the name of an option.",
        ),
        (
            b"A,B, A\n1,2,3\n",
            1,
            "Row 1, column 3: the option “A” is named twice. Each option must have its own name.",
        ),
        (b"A,B\n", 2, "The file has no ballots: below the options in row 1, there are no rows."),
        (b"A,B", 2, "The file has no ballots: below the options in row 1, there are no rows."),
        (
            b"A,B\r\n\r\n",
            2,
            "The file has no ballots: below the options in row 1, there are no rows.",
        ),
        (b"A,B\n1,2\n3\n", 3, "Row 3 has 1 cell, but row 1 names 2 options."),
        (b"A,B\n1,2,3\n", 2, "Row 2 has 3 cells, but row 1 names 2 options."),
        (b"A\n1\n1,2\n", 3, "Row 3 has 2 cells, but row 1 names 1 option."),
        (
            b"A,B\n1,2\n\n3,4\n",
            3,
            "Row 3 is empty. Only the end of the file may have empty lines; each ballot needs a "
            "cell for every option.",
        ),
        (b"A,B\n1,2\n3.5,1\n", 3, "Row 3, column 1 (A): “3.5” is not a whole number from 0 to 5."),
        (b"A,B\n1,x\n", 2, "Row 2, column 2 (B): “x” is not a whole number from 0 to 5."),
        (b"A,B\n1,-\n", 2, "Row 2, column 2 (B): “-” is not a whole number from 0 to 5."),
        (b"A,B\n6,1\n", 2, "Row 2, column 1 (A): “6” is not a whole number from 0 to 5."),
        (b"A,B\n1,-1\n", 2, "Row 2, column 2 (B): “-1” is not a whole number from 0 to 5."),
        (b"A,B\n1,2\r\n7,1\r\n", 3, "Row 3, column 1 (A): “7” is not a whole number from 0 to 5."),
        (b"A,B\n1,\xd9\xa3\n", 2, "Row 2, column 2 (B): “٣” is not a whole number from 0 to 5."),
        (
            b"A,B\n1," + b"9" * 40 + b"\n",
            2,
            "Row 2, column 2 (B): “" + "9" * 30 + "…” is not a whole number from 0 to 5.",
        ),
        (
            b"A,B\n1,2\n\xff,1\n",
            3,
            "Row 3 is not UTF-8 text. Save the file as “CSV UTF-8” and try again.",
        ),
        # An unclosed quote would run to the end of the file: it is named.
        (
            b'"A\n5\n5\n',
            1,
            'Row 1 opens a quotation mark (") that is never closed, so the rest of the file '
            "would be one cell. Close the quote or remove it.",
        ),
        (
            b'A,B\n1,2\n"3,4\n5,5\n',
            3,
            'Row 3 opens a quotation mark (") that is never closed, so the rest of the file '
            "would be one cell. Close the quote or remove it.",
        ),
        # A recount never drops a ballot: a row holding only its receipt is an error.
        (
            b"receipt,A,B\nabc,3,2\ndef\n",
            3,
            "Row 3 has 1 cell, but row 1 has a receipt column and 2 options.",
        ),
        # Physical line numbers, after empty lines at the end too.
        (b"A,B\n1,2\n\n\n3\n", 3, _EMPTY_ROW.replace("%s", "3")),
        (b"receipt,A,B\nx,1,2\n\ny,3\n", 3, _EMPTY_ROW.replace("%s", "3")),
        # A file with no header row: its first ballot is not a list of option names.
        (
            b"1,2,3\n4,5,0\n",
            1,
            "Row 1 holds numbers, not option names: the file seems to have no header row. "
            "Add a first row that names the options, one per column.",
        ),
        # A row of commas is what a spreadsheet leaves below the data, not a ballot.
        (b"A,B,C\n1,2,3\n,,\n", 3, _BLANK_ROW.replace("%s", "3")),
        (b"A,B,C\r\n,,\r\n1,2,3\r\n", 2, _BLANK_ROW.replace("%s", "2")),
        (b"receipt,A,B\nabc,,\n", 2, _BLANK_ROW.replace("%s", "2")),
        (b"A,B\n  ,\t\n", 2, _BLANK_ROW.replace("%s", "2")),
        # A file saved with semicolons, as a spreadsheet in many languages does.
        (
            b"A;B;C\n1;2;3\n",
            1,
            "The cells are separated by semicolons (;), not commas. Save the file as "
            "“CSV UTF-8 (comma delimited)” and try again.",
        ),
        # A quoted line break makes the header two lines long: the bad ballot is on line 4.
        (
            b'"Two\nlines",B\n1,2\n1,x\n',
            4,
            "Row 4, column 2 (B): “x” is not a whole number from 0 to 5.",
        ),
    ],
)
def test_errors_name_the_row_and_the_reason(data, row, text):
    with pytest.raises(BallotFileError) as raised:
        parse_ballots(data)
    assert raised.value.row == row
    assert raised.value.message.render("en") == text
    assert str(raised.value) == text


def test_the_first_bad_row_is_reported():
    data = b"A,B\n" + b"1,2\n" * 1000 + b"1,9\n" + b"x,x\n"
    with pytest.raises(BallotFileError) as raised:
        parse_ballots(data)
    assert raised.value.row == 1002


def test_errors_are_translatable_messages():
    with pytest.raises(BallotFileError) as raised:
        parse_ballots(b"A,B\n1,2\n3\n")
    message = raised.value.message
    assert message.msgid == "Row %(row)s has %(count)s cell, but row 1 names %(options)s."
    assert message.params["row"] == 3


# --- The fast path agrees with the csv module --------------------------------------------

option_names = st.lists(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)
    .map(str.strip)
    .filter(bool)
    # Not what the reader refuses on purpose: a header of numbers (no header row), a
    # semicolon-separated header, and "receipt" (the published ballots' first column).
    .filter(lambda name: not re.fullmatch(r"[+-]?[0-9]+", name))
    .filter(lambda name: ";" not in name and name != "receipt"),
    min_size=1,
    max_size=6,
    unique=True,
)


@st.composite
def ballot_files(draw) -> tuple[bytes, list[str], np.ndarray]:
    """A valid ballot file written in one of the ways the format allows, with the
    options and scores it holds."""
    options = draw(option_names)
    n_ballots = draw(st.integers(1, 30))
    scores = draw(arrays(np.int8, (n_ballots, len(options)), elements=st.integers(0, 5)))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    blank_zeros = draw(st.booleans())
    padded = draw(st.booleans())
    output = io.StringIO()
    # The csv module only quotes the line-ending characters it writes itself.
    quote_all = draw(st.booleans()) or any("\r" in name or "\n" in name for name in options)
    csv.writer(
        output, lineterminator=ending, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    ).writerow(options)
    writer = csv.writer(output, lineterminator=ending)
    for row in scores.tolist():
        cells = ["" if blank_zeros and v == 0 else str(v) for v in row]
        if not any(cells):
            cells[0] = "0"  # a row of blanks is refused: a ballot of zeros is written 0
        if padded:
            cells = [f" {cell} " for cell in cells]
        writer.writerow(cells)
    text = output.getvalue()
    if not draw(st.booleans()):
        text = text.removesuffix(ending)
    text += ending * draw(st.integers(0, 2)) if text.endswith(ending) else ""
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = BOM + data
    return data, options, scores


@settings(max_examples=300, deadline=None)
@given(ballot_files())
def test_both_paths_read_every_valid_file_the_same(file):
    data, options, scores = file
    fast = _parse_fast(data.removeprefix(BOM))
    slow = _parse_slow(data.removeprefix(BOM))
    found_options, found = parse_ballots(data)
    assert found_options == options == slow[0]
    np.testing.assert_array_equal(found, scores)
    np.testing.assert_array_equal(slow[1], scores)
    if fast is not None:
        assert fast[0] == options
        np.testing.assert_array_equal(fast[1], scores)


def _outcome(parse, data: bytes) -> object:
    try:
        options, scores = parse(data)
    except BallotFileError as error:
        return ("error", error.row, error.message.render("en"))
    return (options, scores.shape, scores.tobytes())


@settings(max_examples=500, deadline=None)
@given(ballot_files(), st.data())
def test_the_fast_path_never_accepts_what_the_csv_module_would_not(file, data):
    """Damage a valid file at random; whenever the fast path still returns a result, the
    csv-module path must return exactly the same."""
    original = bytearray(file[0].removeprefix(BOM))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.sampled_from(b'0123456789,\r\n "-.x\xff'))
    damaged = bytes(original)
    fast = _parse_fast(damaged)
    if fast is not None:
        assert _outcome(_parse_fast, damaged) == _outcome(_parse_slow, damaged)
    assert _outcome(parse_ballots, damaged) == _outcome(_parse_slow, damaged)


def test_a_million_ballots_take_the_vectorised_path():
    """The published-file shape (one digit per cell) is read by the NumPy fast path, not
    row by row; its speed is measured in bench/star_bench.py, not asserted here."""
    from harmony_matrix.voting.ballot_csv import _parse_fast

    rng = np.random.default_rng(7)
    scores = rng.integers(0, 6, size=(1_000_000, 10), dtype=np.int8)
    header = ",".join(f"Option {i}" for i in range(10)).encode() + b"\n"
    digits = (scores + ord("0")).astype(np.uint8)
    table = np.full((scores.shape[0], 20), ord(","), dtype=np.uint8)
    table[:, 0::2] = digits
    table[:, -1] = ord("\n")
    data = header + table.tobytes()
    fast = _parse_fast(data)
    assert fast is not None
    options, found = parse_ballots(data)
    assert len(options) == 10 and fast[0] == options
    np.testing.assert_array_equal(found, scores)


def _file_of(options: list[str], scores: np.ndarray, blanks: np.ndarray, ending: str) -> bytes:
    lines = [",".join(options)]
    for row, blank in zip(scores.tolist(), blanks.tolist(), strict=True):
        lines.append(",".join("" if b else str(v) for v, b in zip(row, blank, strict=True)))
    return ending.join(lines).encode()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            arrays(np.int8, st.tuples(st.integers(1, 40), st.just(n)), elements=st.integers(0, 5)),
            st.sampled_from(["\n", "\r\n"]),
            st.integers(0, 2**32 - 1),
        )
    )
)
def test_blank_cells_stay_on_the_fast_path(case):
    """A blank cell (a 0) no longer sends the file to the row-by-row reader."""
    scores, ending, seed = case
    blanks = np.random.default_rng(seed).random(scores.shape) < 0.3
    blanks[:, 0] &= blanks[:, 1:].sum(axis=1) < scores.shape[1] - 1  # never a row of blanks
    scores = np.where(blanks, 0, scores).astype(np.int8)
    options = [f"O{i}" for i in range(scores.shape[1])]
    data = _file_of(options, scores, blanks, ending)
    fast = _parse_fast(data)
    assert fast is not None
    np.testing.assert_array_equal(fast[1], scores)
    np.testing.assert_array_equal(_parse_slow(data)[1], scores)


def test_the_fast_path_reads_chunk_by_chunk(monkeypatch):
    """Files larger than one chunk are cut at line endings and give the same scores."""
    import harmony_matrix.voting.ballot_csv as module

    monkeypatch.setattr(module, "_CHUNK", 7)
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, size=(500, 3), dtype=np.int8)
    blanks = (rng.random(scores.shape) < 0.2) & (scores == 0)
    blanks[:, 0] = False
    for ending in ("\n", "\r\n"):
        data = _file_of(["A", "B", "C"], scores, blanks, ending) + ending.encode()
        fast = _parse_fast(data)
        assert fast is not None
        np.testing.assert_array_equal(fast[1], scores)
        np.testing.assert_array_equal(_parse_slow(data)[1], scores)
    broken = _file_of(["A", "B", "C"], scores, blanks, "\n").replace(b"\n", b"\n\n", 300)
    with pytest.raises(BallotFileError) as raised:
        parse_ballots(broken)
    assert raised.value.row == 2  # the header's line ending is doubled first
