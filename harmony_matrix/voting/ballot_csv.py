"""Reading STAR ballots from a CSV file, for ``harmony tally`` and recounts.

The format: UTF-8 (a byte-order mark is allowed), lines ending ``\\n`` or ``\\r\\n``. Row 1
names the options, one per column; each further row is one ballot, a whole-number score
from 0 to 5 per option. A blank cell scores 0 (as on the ballot paper: blank = 0);
spaces around a value are ignored. Empty lines at the end of the file are ignored; an
empty line anywhere else is an error (a ballot needs a cell for every option).

Every problem raises :class:`BallotFileError` naming the row (line 1 is the header) and
what is wrong, so that whoever prepared the file can fix it. A file is never "repaired"
silently: a recount must count exactly the ballots that were published.

Two readers give the same result. The fast one handles the usual published file, where
every score is one digit, with NumPy in a few passes over the bytes (a million ballots in
tens of milliseconds). Anything else (blanks, spaces, quotes, mixed line endings, or any
mistake) goes to the :mod:`csv` reader, which also finds the first bad row to report.
"""

from __future__ import annotations

import csv
import io
import re
from array import array
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import Message, _, _n

BOM = b"\xef\xbb\xbf"
MAX_SCORE = 5
_CELL = re.compile(r"[+-]?[0-9]+")
_SIMPLE_CELLS = {"": 0, **{str(score): score for score in range(MAX_SCORE + 1)}}
_SHOWN_VALUE_LENGTH = 30


class BallotFileError(InvalidInput):
    """A ballot file that cannot be counted; ``row`` is its 1-based line (header = 1)."""

    def __init__(self, row: int, message: Message) -> None:
        super().__init__(message)
        self.row = row


def parse_ballots(data: bytes) -> tuple[list[str], npt.NDArray[np.int8]]:
    """The option names and the scores (one int8 row per ballot) in a ballot CSV file."""
    data = data.removeprefix(BOM)
    fast = _parse_fast(data)
    if fast is not None:
        return fast
    return _parse_slow(data)


# --- The fast path -----------------------------------------------------------------------


def _parse_fast(data: bytes) -> tuple[list[str], npt.NDArray[np.int8]] | None:
    """Parse a file whose ballot rows are all ``d,d,...,d`` with single digits 0-5 and
    one line ending throughout; None for anything else (the slow path then decides)."""
    header_end = data.find(b"\n")
    if header_end < 0:
        return None
    header = data[:header_end]
    terminator = b"\r\n" if header.endswith(b"\r") else b"\n"
    header = header.removesuffix(b"\r")
    if header.count(b'"') % 2:
        return None  # a quoted line break: the header spans several lines
    try:
        options = _options(next(csv.reader([header.decode("utf-8")]), []))
    except (UnicodeDecodeError, csv.Error, BallotFileError):
        return None
    start, stop = header_end + 1, len(data.rstrip(b"\r\n"))
    scores = _single_digit_rows(data, start, stop, len(options), terminator)
    return None if scores is None else (options, scores)


def _single_digit_rows(
    data: bytes, start: int, stop: int, n_options: int, terminator: bytes
) -> npt.NDArray[np.int8] | None:
    """The scores in ``data[start:stop]`` if every row is ``n_options`` single digits 0-5
    separated by commas, rows separated by ``terminator``; else None.

    Every such row has the same length, so the bytes reshape into a table without a
    copy, and digits, commas and line endings are checked column by column.
    """
    row_length = 2 * n_options - 1 + len(terminator)
    size = stop - start + len(terminator)  # the last row has no terminator
    if stop <= start or size % row_length:
        return None
    rows = size // row_length
    buffer = np.frombuffer(data, dtype=np.uint8, count=stop - start, offset=start)
    table = buffer[: (rows - 1) * row_length].reshape(rows - 1, row_length)
    last = buffer[(rows - 1) * row_length :].reshape(1, row_length - len(terminator))
    scores = np.empty((rows, n_options), dtype=np.uint8)
    np.subtract(table[:, 0 : 2 * n_options - 1 : 2], ord("0"), out=scores[:-1])
    np.subtract(last[:, 0::2], ord("0"), out=scores[-1:])
    ends = np.frombuffer(terminator, dtype=np.uint8)
    well_formed = (
        bool((scores <= MAX_SCORE).all())  # below "0" wraps round to over 200
        and bool((table[:, 1 : 2 * n_options - 1 : 2] == ord(",")).all())
        and bool((last[:, 1::2] == ord(",")).all())
        and bool((table[:, 2 * n_options - 1 :] == ends).all())
    )
    return scores.view(np.int8) if well_formed else None


# --- The slow path -----------------------------------------------------------------------


def _parse_slow(data: bytes) -> tuple[list[str], npt.NDArray[np.int8]]:
    """Parse any CSV with the csv module, cell by cell; raise on the first bad row."""
    text = _decoded(data)
    records = _records(text)
    first = next(records, None)
    if first is None:
        raise BallotFileError(
            1, _("The file is empty. Row 1 must name the options, one per column.")
        )
    options = _options(first[1])
    scores = array("b")
    empty_rows: list[int] = []  # empty lines are only allowed at the end
    for row, cells in records:
        if not cells:
            empty_rows.append(row)
            continue
        if empty_rows:
            raise BallotFileError(
                empty_rows[0],
                _(
                    "Row %(row)s is empty. Only the end of the file may have empty lines; "
                    "each ballot needs a cell for every option.",
                    row=empty_rows[0],
                ),
            )
        if len(cells) != len(options):
            raise _ragged(row, len(cells), len(options))
        try:
            scores.extend([_SIMPLE_CELLS[cell] for cell in cells])
        except KeyError:
            scores.extend(_score(cell, row, column, options) for column, cell in enumerate(cells))
    if not scores:
        raise BallotFileError(
            2, _("The file has no ballots: below the options in row 1, there are no rows.")
        )
    return options, np.frombuffer(scores, dtype=np.int8).reshape(-1, len(options))


def _decoded(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        row = data.count(b"\n", 0, error.start) + 1
        raise BallotFileError(
            row,
            _(
                "Row %(row)s is not UTF-8 text. Save the file as “CSV UTF-8” and try again.",
                row=row,
            ),
        ) from error


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the line it starts on (a quoted cell may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    row = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise BallotFileError(
                row, _("Row %(row)s is not a well-formed CSV row.", row=row)
            ) from error
        yield row, cells
        row = reader.line_num + 1


# --- Checks shared by both paths ---------------------------------------------------------


def _options(cells: list[str]) -> list[str]:
    """The option names in the header: each present, none twice."""
    if not cells:
        raise BallotFileError(1, _("Row 1 is empty. It must name the options, one per column."))
    names = [cell.strip() for cell in cells]
    seen: set[str] = set()
    for column, name in enumerate(names, start=1):
        if not name:
            raise BallotFileError(
                1,
                _(
                    "Row 1, column %(column)s: the option has no name. Every column needs "
                    "the name of an option.",
                    column=column,
                ),
            )
        if name in seen:
            raise BallotFileError(
                1,
                _(
                    "Row 1, column %(column)s: the option “%(option)s” is named twice. "
                    "Each option must have its own name.",
                    column=column,
                    option=name,
                ),
            )
        seen.add(name)
    return names


def _ragged(row: int, found: int, expected: int) -> BallotFileError:
    return BallotFileError(
        row,
        _n(
            "Row %(row)s has %(count)s cell, but row 1 names %(options)s.",
            "Row %(row)s has %(count)s cells, but row 1 names %(options)s.",
            found,
            row=row,
            options=_n("%(count)s option", "%(count)s options", expected),
        ),
    )


def _score(cell: str, row: int, column: int, options: list[str]) -> int:
    """One score: a whole number from 0 to 5, spaces around it ignored, blank = 0."""
    value = cell.strip()
    if not value:
        return 0
    if _CELL.fullmatch(value) and 0 <= int(value) <= MAX_SCORE:
        return int(value)
    shown = value if len(value) <= _SHOWN_VALUE_LENGTH else value[:_SHOWN_VALUE_LENGTH] + "…"
    raise BallotFileError(
        row,
        _(
            "Row %(row)s, column %(column)s (%(option)s): “%(value)s” is not a whole number "
            "from 0 to 5.",
            row=row,
            column=column + 1,
            option=options[column],
            value=shown,
        ),
    )
