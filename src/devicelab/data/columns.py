"""Column values out of pyarrow, and the role of each column: numeric, categorical, target or dropped.

Every conversion runs in pyarrow compute or numpy over whole columns: no Python object per cell.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devicelab.data.numbers import NumberFormat, find_format, normalize, parse
from devicelab.data.read import NA_MARKERS, Frame
from devicelab.errors import UserError, listed

_ROW_NAME_HEADERS = {"rownames", "row.names", "row_names", "unnamed: 0", "unnamed_1", "unnamed"}
_ID_NAME = re.compile(
    r"(^|[_\W])(id|index|idx|key|rows?|rownames?|obs|observation)$|^(id|no|nr|number)[_\W]|[a-z]Id$",
    re.IGNORECASE,
)
_DATE_FORMATS = (
    "%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%d/%m/%Y",
    "%m/%d/%Y", "%d.%m.%Y", "%Y-%m", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%H:%M:%S", "%H:%M",
)  # fmt: skip
FREE_TEXT_SHARE = 0.9  # a text column with more distinct values than this share of its rows is dropped
MAX_BAD_NUMBERS = 0.05  # a numeric column may hold this share of stray text cells (taken as missing)


@dataclass(frozen=True)
class ColumnRole:
    """One line of the role table: what devicelab does with a column, and why."""

    name: str
    role: str  # "numeric" | "categorical" | "target" | "dropped"
    detail: str
    missing: int = 0
    kind: str = ""  # numeric | text | datetime (what the values are)

    def to_dict(self) -> dict:
        return {"column": self.name, "role": self.role, "detail": self.detail, "missing": self.missing}


def text_values(column: pa.ChunkedArray, na_values: tuple[str, ...] = NA_MARKERS) -> pa.ChunkedArray:
    """A column as trimmed text, ``na_values`` (and nulls) as null."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_floating(column.type):  # 3.0 -> "3", as the same cell reads in a CSV of whole numbers
        whole = pc.equal(column, pc.floor(column))
        if pc.all(pc.fill_null(whole, True)).as_py():
            column = column.cast(pa.int64())
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.string())
    text = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.is_in(text, value_set=pa.array(na_values, pa.string())), None, text)


def to_numbers(
    column: pa.ChunkedArray,
    decimal: str = ".",
    na_values: tuple[str, ...] = NA_MARKERS,
    *,
    forced: bool = False,
) -> tuple[pa.ChunkedArray | None, int, str, NumberFormat]:
    """``(float64 column, stray cells, an example, format)``: numbers (as spreadsheets write them, see
    ``numbers``) with null for missing; stray text cells (at most MAX_BAD_NUMBERS of them, any number
    when ``forced``) become null and are counted. None when the column holds text."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return column.cast(pa.float64()), 0, "", NumberFormat()
    if pa.types.is_decimal(kind):
        return column.cast(pa.float64()), 0, "", NumberFormat()
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return None, 0, "", NumberFormat()
    text = normalize(text_values(column, na_values))
    present = len(text) - text.null_count
    if present == 0:
        return None, 0, "", NumberFormat()
    fmt = NumberFormat(decimal=decimal)
    numbers, ok = parse(text, fmt)
    bad = present - (pc.sum(ok).as_py() or 0)
    if bad:  # not plain numbers everywhere: the column's own format, if it has one
        fmt, fits = find_format(text, decimal)
        if fits == 0 or (not forced and fits < 0.5):
            return None, 0, "", fmt  # text (most distinct cells are not numbers): no pass over every cell
        numbers, ok = parse(text, fmt)
        bad = present - (pc.sum(ok).as_py() or 0)
    if bad == present or (bad > MAX_BAD_NUMBERS * present and not forced):
        return None, 0, "", fmt
    example = pc.filter(text, pc.invert(pc.fill_null(ok, True)))[0].as_py() if bad else ""
    return numbers, bad, example, fmt


def to_dates(
    column: pa.ChunkedArray, na_values: tuple[str, ...] = NA_MARKERS
) -> tuple[pa.ChunkedArray | None, str]:
    """``(timestamp column, format)`` when every present cell is a date/time, else ``(None, "")``."""
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return column.cast(pa.timestamp("s")), "native"
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return None, ""
    text = text_values(column, na_values)
    present = len(text) - text.null_count
    if present == 0:
        return None, ""
    first = pc.drop_null(text)[0].as_py()
    if not re.search(r"\d[-/.:]\d", first):
        return None, ""
    for fmt in _DATE_FORMATS:
        parsed = parse_dates(text, fmt)
        if len(parsed) - parsed.null_count == present:
            return parsed, fmt
    return None, ""


def parse_dates(text: pa.ChunkedArray, fmt: str) -> pa.ChunkedArray:
    if fmt == "native":  # pyarrow's own inference (ISO dates and times): cells it cannot read are missing
        try:
            return pc.cast(text, pa.timestamp("s"), safe=False)
        except pa.ArrowInvalid:
            iso = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
            return pc.coalesce(*(pc.strptime(text, format=f, unit="s", error_is_null=True) for f in iso))
    return pc.strptime(text, format=fmt, unit="s", error_is_null=True)


def as_float64(column: pa.ChunkedArray) -> np.ndarray:
    """A float64 column as numpy with NaN for null and for infinities."""
    values = column.to_numpy(zero_copy_only=False) if column.null_count else _dense(column)
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        values = np.where(np.isfinite(values), values, np.nan)
    return values


def _dense(column: pa.ChunkedArray) -> np.ndarray:
    if column.num_chunks == 1:
        return column.chunk(0).to_numpy(zero_copy_only=False)
    return column.to_numpy()


def distinct(column: pa.ChunkedArray) -> int:
    return pc.count_distinct(column, mode="only_valid").as_py()


def infer_role(
    name: str,
    column: pa.ChunkedArray,
    *,
    first: bool,
    categorical: bool,
    decimal: str,
    na_values: tuple[str, ...] = NA_MARKERS,
    numeric: bool = False,
) -> tuple[ColumnRole, pa.ChunkedArray | None, str | NumberFormat]:
    """``(role, prepared values, format)`` of a feature column: float64 numbers (format: how the cells
    write them), text, or timestamps (format: the date format); values None when it is dropped.
    ``categorical``/``numeric``: forced so (--categorical, --numeric)."""
    n = len(column)
    numbers, stray, example, number_format = (
        (None, 0, "", NumberFormat())
        if categorical
        else to_numbers(column, decimal, na_values, forced=numeric)
    )
    if numeric and numbers is None:
        from devicelab.errors import UserError

        sample = pc.drop_null(text_values(column, na_values))
        shown = f" (such as {sample[0].as_py()!r})" if len(sample) else ""
        raise UserError(
            f"--numeric column {name!r} has no cell that reads as a number{shown}",
            hint=f"leave {name!r} out of --numeric, or --ignore it",
        )
    if numbers is not None:
        return _numeric_role(name, numbers, first, numeric, stray, example, number_format)
    if not categorical:
        dates, fmt = to_dates(column, na_values)
        if dates is not None:
            missing = dates.null_count
            if distinct(dates) <= 1:
                return ColumnRole(name, "dropped", "constant date", missing, "datetime"), None, ""
            return ColumnRole(name, "numeric", "date/time", missing, "datetime"), dates, fmt
    text = text_values(column, na_values)
    missing, present = text.null_count, n - text.null_count
    levels = distinct(text)
    if categorical:
        return ColumnRole(name, "categorical", f"{levels} levels (--categorical)", missing, "text"), text, ""
    if levels <= 1:
        what = "empty" if levels == 0 else f"constant ({pc.drop_null(text)[0].as_py()!r})"
        return ColumnRole(name, "dropped", what, missing, "text"), None, ""
    if levels == n:
        if first and _row_name_header(name):
            return ColumnRole(name, "dropped", "row names (unique, first column)", 0, "text"), None, ""
        what = "ID (unique per row)" if _looks_like_id(name, text) else "free text (unique per row)"
        return ColumnRole(name, "dropped", what, 0, "text"), None, ""
    if present >= 20 and levels > present / 2 and _ID_NAME.search(name):
        return (
            ColumnRole(name, "dropped", f"ID ({levels} distinct in {present} rows)", missing, "text"),
            None,
            "",
        )
    if present >= 20 and levels > FREE_TEXT_SHARE * present:
        return (
            ColumnRole(name, "dropped", f"free text ({levels} distinct in {present} rows)", missing, "text"),
            None,
            "",
        )
    return ColumnRole(name, "categorical", f"{levels} levels", missing, "text"), text, ""


def _numeric_role(name, numbers, first, forced, stray, example, number_format):
    """A column of numbers: dropped when constant, empty, or an ID (unique whole numbers in a column that
    names rows: the first one counting 1, 2, 3..., or one named like an ID); never a measurement."""
    n = len(numbers)
    bounds = pc.min_max(numbers).as_py() if numbers.null_count == 0 else {}  # no numpy copy
    finite_bounds = bounds and all(v is not None and math.isfinite(v) for v in bounds.values())
    if finite_bounds and not pc.any(pc.is_nan(numbers)).as_py():  # min_max skips NaN: looked for
        n_present, missing = n, 0  # nothing missing, the common case
    else:
        finite = pc.fill_null(pc.is_finite(numbers), False)
        n_present = pc.sum(finite).as_py() or 0
        missing = n - n_present
        bounds = pc.min_max(pc.filter(numbers, finite)).as_py()
    if n_present == 0 or bounds["min"] == bounds["max"]:
        what = "empty" if n_present == 0 else f"constant ({bounds['min']:g})"
        return ColumnRole(name, "dropped", what, missing, "numeric"), None, ""
    row_names, an_id = first and _row_name_header(name), bool(_ID_NAME.search(name))
    looked_at = (first or row_names or an_id) and not forced and number_format.plain
    if looked_at and missing == 0 and bounds["max"] - bounds["min"] >= n - 1:
        values = as_float64(numbers)  # a column that may count rows or name them: looked at closely
        if first and np.array_equal(values, np.arange(values[0], values[0] + n)):
            what = "row numbers (1, 2, 3, ... in the first column)"
            return ColumnRole(name, "dropped", what, 0, "numeric"), None, ""
        whole = np.all(values == np.floor(values))
        if (row_names or an_id) and whole and np.unique(values).size == n:
            what = "row names (unique, first column)" if row_names else "ID (unique per row)"
            return ColumnRole(name, "dropped", what, 0, "numeric"), None, ""
    parts = ["numbers" + (" (--numeric)" if forced else "")]
    if number_format.describe():
        parts.append(number_format.describe())
    if stray:
        parts.append(f"{stray} text cell(s) such as {example!r} taken as missing")
    kept = number_format if not number_format.plain else ""
    return ColumnRole(name, "numeric", "; ".join(parts), missing, "numeric"), numbers, kept


def _looks_like_id(name: str, text: pa.ChunkedArray) -> bool:
    """Unique text that identifies rows: named so, or codes (one length, no spaces, letters with digits
    or hex), not sentences."""
    if _ID_NAME.search(name) or re.search(r"(uuid|guid|code|sku|key)", name, re.IGNORECASE):
        return True
    lengths = pc.min_max(pc.utf8_length(text)).as_py()
    spaces = pc.any(pc.match_substring(text, " ")).as_py()
    coded = pc.all(pc.match_substring_regex(text, r"^[A-Za-z0-9_\-.:/#]+$")).as_py()
    return bool(
        coded
        and not spaces
        and (lengths["min"] == lengths["max"] or pc.all(pc.match_substring_regex(text, r"\d")).as_py())
    )


def _row_name_header(name: str) -> bool:
    return name.lower() in _ROW_NAME_HEADERS or name == "" or name.lower().startswith("unnamed")


def find_column(frame: Frame, name: str, what: str = "target column") -> str:
    """``name`` if the file has it; otherwise a UserError listing the columns and the closest match."""
    from difflib import get_close_matches

    if name in frame.columns:
        return name
    by_lower = {c.lower(): c for c in frame.columns}
    close = (
        [by_lower[name.lower()]] if name.lower() in by_lower else get_close_matches(name, frame.columns, 1)
    )
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    raise UserError(
        f"{what} {name!r} is not in {frame.path}", hint=f"{suggestion}columns: {listed(frame.columns)}"
    )
