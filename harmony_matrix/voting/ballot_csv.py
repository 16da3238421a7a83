"""Reading STAR ballots from a CSV file, for ``harmony tally`` and recounts.

The format: UTF-8 (a byte-order mark is allowed), cells separated by commas, lines ending
``\\n`` or ``\\r\\n``. Row 1 names the options, one per column; each further row is one
ballot, a whole-number score from 0 to 5 per option. A blank cell scores 0 (as on the
ballot paper: blank = 0), but a row whose every score is blank is refused: it is what a
spreadsheet leaves below the data, not a ballot (Harmony publishes a 0 as ``0``). Spaces
around a value are ignored. Empty lines at the end of the file are ignored; an empty line
anywhere else is an error (a ballot needs a cell for every option). Harmony's published
ballots begin with a ``receipt`` column: it is not an option, but every ballot row must
still have its cell.

Every problem raises :class:`BallotFileError` naming the physical line (line 1 is the
header; a quoted line break counts as a line) and what is wrong, so that whoever prepared
the file can fix it. A file is never "repaired" silently: a recount must count exactly the
ballots that were published.

Two readers give the same result. The fast one handles the usual published file, where
every score is one digit or blank, with NumPy over the bytes a megabyte at a time (a
million ballots in tens of milliseconds, memory about half the file for the scores).
Anything else (receipts, spaces, quotes, mixed line endings, or any mistake) goes to the
:mod:`csv` reader, which streams the file and finds the first bad row to report.
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
#: The first column of Harmony's published ballots; it is not an option.
RECEIPT = "receipt"
_CELL = re.compile(r"[+-]?[0-9]+")
_SIMPLE_CELLS = {"": 0, **{str(score): score for score in range(MAX_SCORE + 1)}}
_SHOWN_VALUE_LENGTH = 30
#: The fast path reads this many bytes at a time, so its temporaries stay small.
_CHUNK = 1 << 20
#: The only bytes of a fast-path ballot row: the digits 0-5, commas and line endings.
_FAST_BYTES = np.zeros(256, dtype=bool)
_FAST_BYTES[list(b"012345,\r\n")] = True


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
    """Parse a file whose ballot rows are all one digit 0-5 or a blank per option,
    separated by commas, with one line ending throughout; None for anything else (the
    slow path then decides, and reports any mistake)."""
    header_end = data.find(b"\n")
    if header_end < 0:
        return None
    header = data[:header_end]
    crlf = header.endswith(b"\r")
    header = header.removesuffix(b"\r")
    if header.count(b'"') % 2:
        return None  # a quoted line break: the header spans several lines
    try:
        cells = next(csv.reader([header.decode("utf-8")], strict=True), [])
        if cells and cells[0].strip() == RECEIPT:
            return None  # receipts are text of any length
        options = _options(cells)
    except (UnicodeDecodeError, csv.Error, BallotFileError):
        return None
    start, stop = header_end + 1, len(data.rstrip(b"\r\n"))
    scores = _short_cell_rows(data, start, stop, len(options), crlf)
    return None if scores is None else (options, scores)


def _short_cell_rows(
    data: bytes, start: int, stop: int, n_options: int, crlf: bool
) -> npt.NDArray[np.int8] | None:
    """The scores in ``data[start:stop]`` if every row is ``n_options`` cells of one digit
    0-5 or nothing, not all blank, rows ending ``\\r\\n`` if ``crlf`` else ``\\n``; else
    None. Read in chunks of whole lines, so the temporaries stay a few megabytes."""
    if stop <= start:
        return None
    rows = data.count(b"\n", start, stop) + 1
    scores = np.empty((rows, n_options), dtype=np.int8)
    done = 0
    position = start
    while position < stop:
        end = stop
        if position + _CHUNK < stop:
            cut = data.rfind(b"\n", position, position + _CHUNK)
            if cut < 0:
                cut = data.find(b"\n", position + _CHUNK, stop)
            end = stop if cut < 0 else cut + 1
        chunk = np.frombuffer(data, dtype=np.uint8, count=end - position, offset=position)
        found = _one_digit_rows(chunk, n_options, crlf, last=end == stop)
        if found is None:
            found = _chunk_rows(chunk, n_options, crlf, last=end == stop)
        if found is None or done + len(found) > rows:
            return None
        scores[done : done + len(found)] = found
        done += len(found)
        position = end
    return scores if done == rows else None


def _one_digit_rows(
    chunk: npt.NDArray[np.uint8], n_options: int, crlf: bool, *, last: bool
) -> npt.NDArray[np.int8] | None:
    """The rows of a chunk if each is ``n_options`` single digits 0-5, none blank (the
    published file's shape); else None. Such rows all have the same length, so the bytes
    reshape into a table without a copy: ten times faster than :func:`_chunk_rows`, which
    the chunk that holds a blank cell then takes."""
    terminator = np.frombuffer(b"\r\n" if crlf else b"\n", dtype=np.uint8)
    row_length = 2 * n_options - 1 + len(terminator)
    size = len(chunk) + (len(terminator) if last else 0)  # the last row has no ending
    if size % row_length:
        return None
    rows = size // row_length
    full = rows - 1 if last else rows
    table = chunk[: full * row_length].reshape(full, row_length)
    digits = table[:, 0 : 2 * n_options - 1 : 2] - ord("0")  # below "0" wraps to 200+
    if not (
        bool((digits <= MAX_SCORE).all())
        and bool((table[:, 1 : 2 * n_options - 1 : 2] == ord(",")).all())
        and bool((table[:, 2 * n_options - 1 :] == terminator).all())
    ):
        return None
    if not last:
        return digits.view(np.int8)
    final = chunk[full * row_length :].reshape(1, row_length - len(terminator))
    final_digits = final[:, 0::2] - ord("0")
    if not (bool((final_digits <= MAX_SCORE).all()) and bool((final[:, 1::2] == ord(",")).all())):
        return None
    return np.vstack([digits, final_digits]).view(np.int8)


def _chunk_rows(
    chunk: npt.NDArray[np.uint8], n_options: int, crlf: bool, *, last: bool
) -> npt.NDArray[np.int8] | None:
    """The rows of one chunk of whole lines (the last chunk has no final line ending)."""
    if not _FAST_BYTES[chunk].all():
        return None
    newline = chunk == ord("\n")
    newlines = np.flatnonzero(newline)
    returns = int(np.count_nonzero(chunk == ord("\r")))
    if crlf:
        # Every \r right before a \n, and every \n after a \r: no stray \r in a cell.
        if returns != len(newlines) or (newlines == 0).any():
            return None
        if not (chunk[newlines - 1] == ord("\r")).all():
            return None
    elif returns:
        return None
    ends = np.flatnonzero(newline | (chunk == ord(",")))  # where each cell ends
    is_line_end = newline[ends]
    if last:  # the end of the data ends the last row
        ends = np.append(ends, len(chunk))
        is_line_end = np.append(is_line_end, True)
    if len(ends) % n_options:
        return None
    shape = (len(ends) // n_options, n_options)
    grid = is_line_end.reshape(shape)
    if not grid[:, -1].all() or grid[:, :-1].any():
        return None
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    if crlf:
        ends[is_line_end & (ends < len(chunk))] -= 1  # the \r is not in the cell
    lengths = ends - starts
    if not ((lengths == 0) | (lengths == 1)).all():
        return None
    filled = lengths == 1
    if not filled.reshape(shape).any(axis=1).all():
        return None  # a row of blanks: the slow path says which
    digits = chunk[np.minimum(starts, len(chunk) - 1)]
    return np.where(filled, digits - ord("0"), 0).astype(np.int8).reshape(shape)


# --- The slow path -----------------------------------------------------------------------


def _parse_slow(data: bytes) -> tuple[list[str], npt.NDArray[np.int8]]:
    """Parse any CSV with the csv module, row by row; raise on the first bad row."""
    _check_utf8(data)
    records = _records(data)
    first = next(records, None)
    if first is None:
        raise BallotFileError(
            1, _("The file is empty. Row 1 must name the options, one per column.")
        )
    header = first[1]
    receipts = bool(header) and header[0].strip() == RECEIPT
    options = _options(header[1:] if receipts else header)
    width = len(options) + receipts
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
        if len(cells) != width:
            raise _ragged(row, len(cells), len(options), receipts)
        if receipts:
            del cells[0]
        try:
            scores.extend([_SIMPLE_CELLS[cell] for cell in cells])
        except KeyError:
            scores.extend(_score(cell, row, column, options) for column, cell in enumerate(cells))
        if not any(cell.strip() for cell in cells):
            raise BallotFileError(
                row,
                _(
                    "Row %(row)s has no score at all, only blank cells. Remove the row if it "
                    "is not a ballot; a ballot that scores every option 0 is written with 0s.",
                    row=row,
                ),
            )
    if not scores:
        raise BallotFileError(
            2, _("The file has no ballots: below the options in row 1, there are no rows.")
        )
    return options, np.frombuffer(scores, dtype=np.int8).reshape(-1, len(options))


def _check_utf8(data: bytes) -> None:
    """Raise for the first line that is not UTF-8, decoding a megabyte at a time (cut at
    a line ending, which is never inside a character) so no copy of the file is made."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + _CHUNK)
        end = len(data) if end < 0 else end + 1
        try:
            data[start:end].decode("utf-8")
        except UnicodeDecodeError as error:
            row = data.count(b"\n", 0, start + error.start) + 1
            raise BallotFileError(
                row,
                _(
                    "Row %(row)s is not UTF-8 text. Save the file as “CSV UTF-8” and try again.",
                    row=row,
                ),
            ) from error
        start = end


def _lines(data: bytes) -> Iterator[str]:
    """The file's lines, decoded a megabyte at a time (cut at a line ending): the csv
    module reads them as from a file, without a decoded copy of the whole file."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + _CHUNK)
        end = len(data) if end < 0 else end + 1
        yield from io.StringIO(data[start:end].decode("utf-8"), newline="")
        start = end


def _records(data: bytes) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the line it starts on (a quoted cell may span lines)."""
    reader = csv.reader(_lines(data), strict=True)
    row = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "unexpected end of data" in str(error):
                raise BallotFileError(
                    row,
                    _(
                        'Row %(row)s opens a quotation mark (") that is never closed, so '
                        "the rest of the file would be one cell. Close the quote or remove "
                        "it.",
                        row=row,
                    ),
                ) from error
            raise BallotFileError(
                row, _("Row %(row)s is not a well-formed CSV row.", row=row)
            ) from error
        yield row, cells
        row = reader.line_num + 1


# --- Checks shared by both paths ---------------------------------------------------------


def _options(cells: list[str]) -> list[str]:
    """The option names in the header: each present, none twice, not all numbers."""
    if not cells:
        raise BallotFileError(1, _("Row 1 is empty. It must name the options, one per column."))
    names = [cell.strip() for cell in cells]
    if len(names) == 1 and ";" in names[0]:
        raise BallotFileError(
            1,
            _(
                "The cells are separated by semicolons (;), not commas. Save the file as "
                "“CSV UTF-8 (comma delimited)” and try again."
            ),
        )
    if all(_CELL.fullmatch(name) for name in names):
        raise BallotFileError(
            1,
            _(
                "Row 1 holds numbers, not option names: the file seems to have no header "
                "row. Add a first row that names the options, one per column."
            ),
        )
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


def _ragged(row: int, found: int, expected: int, receipts: bool = False) -> BallotFileError:
    if receipts:
        return BallotFileError(
            row,
            _n(
                "Row %(row)s has %(count)s cell, but row 1 has a receipt column and %(options)s.",
                "Row %(row)s has %(count)s cells, but row 1 has a receipt column and %(options)s.",
                found,
                row=row,
                options=_n("%(count)s option", "%(count)s options", expected),
            ),
        )
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
