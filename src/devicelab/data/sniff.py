"""How a CSV is laid out, sniffed from its first lines: the delimiter, the quote, the decimal mark, the
header; and the file line that pyarrow stumbled on, found again when it fails."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from devicelab.errors import UserError, listed

DELIMITERS = (",", ";", "\t", "|")
SPACES = " "  # the delimiter recorded for files whose columns are separated by runs of spaces
SAMPLE_BYTES = 1 << 16
_SAMPLE_LINES = 50


@dataclass(frozen=True)
class Layout:
    """How a CSV is laid out, sniffed from its first lines."""

    delimiter: str
    quote: str  # '"' or "'"
    decimal: str  # "." or ","
    columns: tuple[str, ...]  # clean names (unquoted, stripped; unnamed ones named)
    raw_columns: tuple[str, ...]  # the names as pyarrow will see them (for column_types)
    skip_rows: int  # physical lines up to and including the header


_NUMBER_DOT = re.compile(r"^[+-]?\d*\.\d+([eE][+-]?\d+)?$")
_NUMBER_COMMA = re.compile(r"^[+-]?\d*,\d+([eE][+-]?\d+)?$")
_SEP_LINE = re.compile(r"""^["']?sep=([,;\t|])["']?$""")
SPACE_TOKEN = re.compile(r'"(?:[^"]|"")*"|\'[^\']*\'|\S+')


def sniff(path: Path, sample: str) -> Layout:
    """The delimiter among ``, ; tab |`` that splits the sample into the most columns, the same number on
    every line (a data row may have one more cell than the header: R's row names, or a delimiter ending every
    data line); else runs of spaces. A first line ``sep=;`` (Excel's) names the delimiter and is skipped."""
    lines = re.split(r"\r\n|\n|\r", sample)  # not splitlines(): a quoted cell may hold \x0c or \u2028
    if len(sample) >= SAMPLE_BYTES - 4 and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample is partial
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise UserError(f"{path} is empty", hint="a CSV needs a header row and at least one data row")
    declared = _SEP_LINE.match(lines[first].strip())  # Excel's "sep=;" line before the header
    if declared:
        first = next((i for i in range(first + 1, len(lines)) if lines[i].strip()), None)
        if first is None:
            raise UserError(f"{path} has only a sep= line", hint="a CSV needs a header row and data rows")
    body = [line for line in lines[first : first + _SAMPLE_LINES] if line.strip()]
    quote = _quote_char(body)
    best: tuple[str, list[list[str]]] = (",", [_split(line, ",", quote) for line in body[:1]])
    best_width = 1
    for delimiter in (declared.group(1),) if declared else (*DELIMITERS, SPACES):
        rows = [_split(line, delimiter, quote) for line in body]
        header, widths = len(rows[0]), {len(r) for r in rows[1:]} or {len(rows[0])}
        width = widths.pop() if len(widths) == 1 else 0  # every data line splits the same way
        ends_empty = header > 2 and not rows[0][-1].strip()  # "a,b,c," : a delimiter ending the header only
        if width in (header - ends_empty, header, header + 1) and width > best_width:
            best, best_width = (delimiter, rows), width
        if delimiter == DELIMITERS[-1] and best_width > 1:
            break  # a real delimiter found: spaces are only the last resort
    delimiter, rows = best
    header = [_unquote(cell) for cell in rows[0]]
    raw_header = [_unquote(cell, "\"'" if quote == '"' else "'") for cell in rows[0]]
    if len(rows) > 1 and len(rows[1]) == len(header) - 1:  # the header's empty last name names no cell
        header, raw_header = header[:-1], raw_header[:-1]
    if len(rows) > 1 and len(rows[1]) == len(header) + 1:
        firsts = [_unquote(row[0]) for row in rows[1:]]
        numbered = firsts == [str(i) for i in range(1, len(firsts) + 1)]  # R's default row names
        if all(not row[-1].strip() for row in rows[1:]) and any(firsts) and not numbered:
            # a delimiter at the end of every data line but not the header: an empty last column, where
            # taking it for R's row names would shift every name one column to the right
            header, raw_header = [*header, ""], [*raw_header, ""]
        else:  # R's write.table: no name for the row names
            header, raw_header = ["", *header], ["", *raw_header]
    columns = tuple(name or f"unnamed_{i + 1}" for i, name in enumerate(header))
    check_header(path, columns)
    cells = [cell for row in rows[1:] for cell in row]
    commas = sum(bool(_NUMBER_COMMA.match(c.strip().strip(quote))) for c in cells)
    dots = sum(bool(_NUMBER_DOT.match(c.strip().strip(quote))) for c in cells)
    decimal = "," if delimiter != "," and commas > dots else "."
    return Layout(delimiter, quote, decimal, columns, tuple(raw_header), first + 1)


def _quote_char(lines: list[str]) -> str:
    """Single quotes when cells are quoted that way and never with double quotes (some R and SQL exports)."""
    text = "\n".join(lines)
    singles = len(re.findall(r"(^|[,;\t| ])'", text))
    doubles = len(re.findall(r'(^|[,;\t| ])"', text))
    return "'" if singles > 0 and doubles == 0 and singles >= len(lines) else '"'


def _split(line: str, delimiter: str, quote: str) -> list[str]:
    if delimiter == SPACES:
        return SPACE_TOKEN.findall(line)
    return next(csv.reader([line], delimiter=delimiter, quotechar=quote), [])


def _unquote(cell: str, quotes: str = "\"'") -> str:
    cell = cell.strip()
    if len(cell) >= 2 and cell[0] == cell[-1] and cell[0] in quotes:
        cell = cell[1:-1].strip()
    return cell


def check_header(path: Path, header: tuple[str, ...]) -> None:
    seen = {name for name in header if header.count(name) > 1}
    if seen:
        raise UserError(f"{path} has duplicate column names: {listed(sorted(seen))}", hint="rename them")


def parse_error(path: Path, raw: bytes | None, encoding: str, layout: Layout, error: Exception) -> UserError:
    """The line pyarrow stumbled on, found again with Python's csv module (only when there is an error)."""
    data = raw if raw is not None else path.read_bytes()
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    width = len(layout.columns)
    if layout.delimiter == SPACES:
        for number, line in enumerate(text.splitlines(), start=1):
            cells = SPACE_TOKEN.findall(line)
            if number > layout.skip_rows and cells and len(cells) != width:
                return _ragged(path, number, len(cells), width, layout.delimiter)
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=layout.delimiter, quotechar=layout.quote)
        for cells in reader:
            if reader.line_num > layout.skip_rows and any(c.strip() for c in cells) and len(cells) != width:
                return _ragged(path, reader.line_num, len(cells), width, layout.delimiter)
    first = str(error).splitlines()[0][:160]
    return UserError(
        f"{path} cannot be read as CSV: {first}", hint="fix the file, or save it again as UTF-8 CSV"
    )


def _ragged(path: Path, line: int, cells: int, width: int, delimiter: str) -> UserError:
    return UserError(
        f"{path} line {line} has {cells} cells but the header has {width}",
        hint=f"fix that line (delimiter {delimiter_name(delimiter)})",
    )


def delimiter_name(delimiter: str | None) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe", SPACES: "spaces", None: "none"}[
        delimiter
    ]
