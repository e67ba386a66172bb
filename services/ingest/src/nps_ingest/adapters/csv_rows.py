"""Reading an import's CSV (RFC 4180) into rows, with what is wrong with each row said of that
row rather than lost.

Python's `csv` reader is lenient where an import must not be: an unbalanced quote (`"Too slow`
with no closing quote) makes it read on, across the line end, to the next quote or to the end
of the file, so the rows after it become part of one field and vanish; and a row with more
fields than the header keeps the extras under the `None` key, where nothing reads them. Here:

- a record read over several lines is a row with a quoted line break (a comment of two
  paragraphs: fine) unless it has not the header's number of fields, or one of the lines it ran
  over is a whole row by itself; then a quote was left open: that row is refused, naming its
  line, and the lines after it are read again as rows of their own;
- a row with more or fewer fields than the header is refused, saying how many.
"""

import csv
import re
from dataclasses import dataclass

#: Physical lines, each with its end (`\n`, or `\r\n`: the reader handles the `\r`).
_LINES = re.compile(r"[^\n]*\n|[^\n]+$")


class CsvHeaderError(ValueError):
    """The header row cannot be read: the whole import is refused."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One row after the header: its cells by column name, or why it cannot be imported.
    `line` is the line it starts on, the header being line 1."""

    line: int
    cells: dict[str, str] | None = None
    error: str | None = None


def read_csv(text: str, *, max_rows: int) -> tuple[list[str], list[CsvRow]]:
    """The header's column names and the rows after it, in order, blank lines skipped; it
    stops after `max_rows + 1` rows (enough to say there are too many)."""
    lines = _LINES.findall(text)
    if not lines:
        raise CsvHeaderError("The body is empty: a header row is expected.")
    try:
        header = next(csv.reader([lines[0]]), [])
    except csv.Error as exc:
        raise CsvHeaderError(f"The header row is not CSV: {exc}") from exc
    header = [name.strip() for name in header]
    rows: list[CsvRow] = []
    at = 1  # index in `lines` of the next line to read
    while at < len(lines) and len(rows) <= max_rows:
        at = _read_from(lines, at, header, rows, max_rows=max_rows)
    return header, rows


def _read_from(
    lines: list[str], start: int, header: list[str], rows: list[CsvRow], *, max_rows: int
) -> int:
    """Read rows from `lines[start:]` into `rows`; return where to read again after a row
    that swallowed the lines after it, or `len(lines)` when all is read."""
    # Not `lines[start:]`: a copy per restart made a 1 MiB file of open quotes take 55 s.
    reader = csv.reader(lines[i] for i in range(start, len(lines)))
    consumed = 0
    while len(rows) <= max_rows:
        first = start + consumed  # index of the row's first line
        try:
            fields = next(reader)
        except StopIteration:
            return len(lines)
        except csv.Error as exc:
            rows.append(CsvRow(line=first + 1, error=f"line {first + 1} is not CSV: {exc}"))
            return first + 1
        consumed = reader.line_num
        last = start + consumed - 1
        if not fields:
            continue  # a blank line
        if last > first and _swallowed(fields, lines[first + 1 : last + 1], len(header)):
            rows.append(
                CsvRow(
                    line=first + 1,
                    error=f"line {first + 1}: a quote opened in this row is not closed at its "
                    f"end, so it ran on over lines {first + 2}–{last + 1}; this row is not "
                    "imported (close or double the quote), and the lines after it are read "
                    "as rows of their own",
                )
            )
            return first + 1
        if len(fields) != len(header):
            more = len(fields) > len(header)
            rows.append(
                CsvRow(
                    line=first + 1,
                    error=f"line {first + 1} has {len(fields)} fields and the header "
                    f"{len(header)}: "
                    + (
                        "the extra fields would be lost (quote a value that holds a comma)"
                        if more
                        else "fields are missing"
                    ),
                )
            )
            continue
        rows.append(CsvRow(line=first + 1, cells=dict(zip(header, fields, strict=True))))
    return len(lines)


def _swallowed(fields: list[str], over: list[str], width: int) -> bool:
    """Whether a record read over the lines `over` (after its first) took in other rows."""
    if len(fields) != width:
        return True
    for line in over:
        try:
            alone = next(csv.reader([line]), [])
        except csv.Error:
            continue
        if len(alone) >= width:
            return True
    return False
