"""Reading a user's CSV into numeric features and a target, with one clear error per bad input.

Handles what real files bring: byte-order marks (UTF-8, UTF-16, UTF-32), Windows-1252 text, ``;``/tab/``|``
delimiters (sniffed), quoted cells, decimal commas in ``;``-separated files, empty or NaN cells (counted,
or dropped with ``--dropna``), text columns among the features (named), and a text target (kept as class
labels). Compressed, spreadsheet and other binary files are named as such.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
from dataclasses import dataclass, replace
from difflib import get_close_matches
from pathlib import Path

import numpy as np

from devicelab.errors import UserError

DELIMITERS = (",", ";", "\t", "|")
MISSING = frozenset({"", "na", "nan", "n/a", "null", "none", "?"})
_SHOW_ROWS = 5  # how many offending line numbers an error names


@dataclass(frozen=True)
class Table:
    """The text cells of a CSV file, as read: a header and rows of equal length."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    line_numbers: tuple[int, ...]  # the file line of each row (1-based, header is line 1)
    delimiter: str
    sha256: str
    encoding: str = "utf-8"

    def column(self, name: str) -> list[str]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


def read_table(path: str | Path) -> Table:
    """Read ``path`` as a CSV with a header row. Raises UserError naming what is wrong."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"file {str(path)!r} does not exist", hint="check the path given to --data")
    if not path.is_file():
        raise UserError(f"{str(path)!r} is not a file", hint="give --data a CSV file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise UserError(
            f"cannot read {path} ({error.strerror})", hint="check the file's permissions"
        ) from None
    text, encoding = decode(raw, path)
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise UserError(f"{path} is empty", hint="a CSV needs a header row and at least one data row")
    delimiter = sniff_delimiter(lines[first : first + 50])
    # The reader gets the text itself, not lines split beforehand, so a quoted cell may hold a newline;
    # each record keeps the file line it ends on, for messages.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = [(reader.line_num, cells) for cells in reader if any(cell.strip() for cell in cells)]
    header = tuple(cell.strip() for cell in records[0][1])
    _check_header(path, header)
    rows, numbers = [], []
    for number, cells in records[1:]:
        if len(cells) != len(header):
            raise UserError(
                f"{path} line {number} has {len(cells)} cells but the header has {len(header)}",
                hint=f"fix that line (delimiter {_name(delimiter)})",
            )
        rows.append(tuple(cell.strip() for cell in cells))
        numbers.append(number)
    if not rows:
        raise UserError(f"{path} has a header but no data rows", hint="add rows below the header")
    return Table(
        path, header, tuple(rows), tuple(numbers), delimiter, hashlib.sha256(raw).hexdigest(), encoding
    )


# Byte-order marks, UTF-32 before UTF-16 (whose little-endian mark begins UTF-32's)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_NOT_CSV = {  # magic numbers of files people pass by mistake: what it is, what to do
    b"\x1f\x8b": ("gzip-compressed", "decompress it first (gunzip FILE)"),
    b"PK\x03\x04": ("a zip archive or an Excel workbook", "export it as CSV (File > Save As > CSV UTF-8)"),
}


def decode(raw: bytes, path: Path) -> tuple[str, str]:
    """``(text, encoding)``: a byte-order mark names the encoding (UTF-8, UTF-16, UTF-32, as Excel's
    "CSV UTF-8" and "Unicode Text" write them); without one UTF-8, else Windows-1252 (Excel's plain "CSV"
    on Western Windows), else Latin-1."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), encoding
            except UnicodeDecodeError as error:
                raise UserError(
                    f"{path} starts with a {encoding.upper()} byte-order mark but byte {error.start} is not "
                    f"{encoding.upper()}",
                    hint="save the file again as UTF-8 CSV",
                ) from None
    what, fix = next((kind for magic, kind in _NOT_CSV.items() if raw.startswith(magic)), (None, None))
    if what is None and b"\x00" in raw:
        what, fix = "binary (it has NUL bytes)", "give a CSV text file; UTF-16 text needs a byte-order mark"
    if what:
        raise UserError(f"{path} is not a CSV text file: it is {what}", hint=fix)
    for encoding in ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"  # decodes any bytes: the last resort


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter among ``, ; tab |`` that splits the sample into the most columns, the same number
    on every line (a plain ``str.count`` is fooled by decimal commas and quoted text)."""
    best, best_width = ",", 1
    sample = [line for line in lines if line.strip()]
    for delimiter in DELIMITERS:
        widths = {len(cells) for cells in csv.reader(sample, delimiter=delimiter)}
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            best, best_width = delimiter, width
    return best


def require_two_columns(table: Table) -> None:
    """Training needs feature columns and a target column."""
    if len(table.columns) < 2:
        raise UserError(
            f"{table.path} has a single column {table.columns[0]!r}",
            hint="a CSV to train on needs feature columns and a target column, separated by , ; tab or |",
        )


def _check_header(path: Path, header: tuple[str, ...]) -> None:
    empty = [i + 1 for i, name in enumerate(header) if not name]
    if empty:
        raise UserError(f"{path} has unnamed columns (positions {empty})", hint="give every column a name")
    seen = {name for name in header if header.count(name) > 1}
    if seen:
        raise UserError(f"{path} has duplicate column names: {', '.join(sorted(seen))}", hint="rename them")


def _name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}[delimiter]


def find_column(table: Table, name: str, what: str = "target column") -> str:
    """``name`` if the table has it; otherwise a UserError listing the columns and the closest match."""
    if name in table.columns:
        return name
    by_lower = {c.lower(): c for c in table.columns}
    close = (
        [by_lower[name.lower()]] if name.lower() in by_lower else get_close_matches(name, table.columns, 1)
    )
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    raise UserError(
        f"{what} {name!r} is not in {table.path}",
        hint=f"{suggestion}columns: {', '.join(table.columns)}",
    )


def missing_rows(table: Table, columns: tuple[str, ...]) -> list[int]:
    """Indexes of rows with an empty or NaN cell in any of ``columns``."""
    indexes = [table.columns.index(c) for c in columns]
    return [r for r, row in enumerate(table.rows) if any(row[i].lower() in MISSING for i in indexes)]


def drop_rows(table: Table, drop: list[int]) -> Table:
    gone = set(drop)
    keep = [r for r in range(len(table.rows)) if r not in gone]
    return replace(
        table,
        rows=tuple(table.rows[r] for r in keep),
        line_numbers=tuple(table.line_numbers[r] for r in keep),
    )


def check_missing(
    table: Table,
    columns: tuple[str, ...],
    *,
    dropna: bool,
    fix: str = "fill them in, or pass --dropna to drop those rows",
) -> Table:
    """The table without rows that have empty/NaN cells when ``dropna``; otherwise a UserError that
    counts them, names the first lines and says how to ``fix`` it."""
    bad = missing_rows(table, columns)
    if not bad:
        return table
    if not dropna:
        lines = ", ".join(str(table.line_numbers[r]) for r in bad[:_SHOW_ROWS])
        more = ", ..." if len(bad) > _SHOW_ROWS else ""
        raise UserError(
            f"{table.path} has {len(bad)} row(s) with empty or NaN cells (lines {lines}{more})",
            hint=fix,
        )
    kept = drop_rows(table, bad)
    if not kept.rows:
        raise UserError(
            f"every row of {table.path} has an empty or NaN cell", hint="nothing is left to train on"
        )
    return kept


def to_number(cell: str, delimiter: str) -> float | None:
    """``cell`` as a float, or None when it is not a number (a decimal comma is accepted in files whose
    delimiter is not a comma)."""
    for text in (cell, cell.replace(",", ".") if delimiter != "," else cell):
        try:
            return float(text)
        except ValueError:
            continue
    return None


def numeric_features(table: Table, features: tuple[str, ...]) -> np.ndarray:
    """The ``features`` columns as a float64 matrix; a UserError names every non-numeric column."""
    columns, bad = [], []
    for name in features:
        values = [to_number(cell, table.delimiter) for cell in table.column(name)]
        first_bad = next((table.column(name)[i] for i, v in enumerate(values) if v is None), None)
        if first_bad is not None:
            bad.append(f"{name} (e.g. {first_bad!r})")
        columns.append(values)
    if bad:
        raise UserError(
            f"non-numeric feature column(s) in {table.path}: {'; '.join(bad)}",
            hint="drop those columns or encode them as numbers",
        )
    matrix = np.asarray(columns, dtype=np.float64).T
    if not np.isfinite(matrix).all():
        raise UserError(f"{table.path} has infinite feature values", hint="replace them with finite numbers")
    return matrix


@dataclass(frozen=True)
class Target:
    """A target column turned into training values: class ids with their labels, or numbers."""

    values: np.ndarray  # int64 class ids, or float64 values
    task: str  # "classification" | "regression"
    classes: tuple | None  # the original label of each class id


MAX_INFERRED_CLASSES = 20


def encode_target(table: Table, name: str, task: str | None) -> Target:
    """Text targets become classes; whole numbers with few distinct values become classes unless
    ``task`` says regression; anything else is regression."""
    cells = table.column(name)
    numbers = [to_number(cell, table.delimiter) for cell in cells]
    numeric = all(v is not None for v in numbers)
    if task == "regression" and not numeric:
        example = next(cell for cell, v in zip(cells, numbers, strict=True) if v is None)
        raise UserError(
            f"--task regression needs a numeric target, but {name!r} holds text such as {example!r}",
            hint="use --task classification, or pick a numeric --target",
        )
    if task is None:
        whole = numeric and all(math.isfinite(v) and float(v).is_integer() for v in numbers)
        few = len(set(cells if not numeric else numbers)) <= MAX_INFERRED_CLASSES
        task = "classification" if not numeric or (whole and few) else "regression"
    if task == "regression":
        return Target(np.asarray(numbers, dtype=np.float64), task, None)
    labels = [_label(v) for v in numbers] if numeric else cells
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise UserError(
            f"target {name!r} has a single class ({classes[0]!r}) in {table.path}",
            hint="classification needs at least two classes; check --target",
        )
    index = {label: i for i, label in enumerate(classes)}
    return Target(np.asarray([index[label] for label in labels], dtype=np.int64), task, classes)


def _label(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
