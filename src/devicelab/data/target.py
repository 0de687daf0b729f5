"""The one path from a target column to training values, for files and built-in sets alike.

Class labels are whatever the file holds: "None", "NA", "0" and "yes" are labels. Empty cells and the
markers the user declares (``--na-values``) are missing; so are "NA", "NaN" and the other NA_MARKERS in a
column of numbers (as pandas, R and pyarrow read them), unless ``--task classification`` keeps them as a
class. Numbers may be written as spreadsheets write them ("$1,234", "39%"). Rows without a target are
dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devicelab.data.numbers import PLAIN, NumberFormat, find_format, normalize, parse
from devicelab.data.read import NA_MARKERS
from devicelab.errors import UserError

MAX_INFERRED_CLASSES = (
    20  # whole numbers with at most this many values (3+ rows each) are inferred as classes
)
MAX_NUMERIC_CLASSES = 100  # a numeric target asked for as classes with more values than this is refused


@dataclass(frozen=True)
class Target:
    """A target column turned into training values: class ids with their labels, or numbers."""

    values: np.ndarray  # int64 class ids, or float64 values (rows whose target is missing are left out)
    task: str  # "classification" | "regression"
    classes: tuple | None  # the original label of each class id
    present: np.ndarray  # bool per row: the target is given (the rows ``values`` belong to)
    how: str = ""  # how the numbers were read, when not plain ("'$' stripped; 3 'NA' cells missing")

    @property
    def n_missing(self) -> int:
        return int(np.count_nonzero(~self.present))


def encode_target(
    column: pa.ChunkedArray | pa.Array | np.ndarray,
    name: str,
    task: str | None,
    *,
    where: str = "",
    na_values: tuple[str, ...] = (),
    decimal: str = ".",
) -> Target:
    """Text targets become classes; whole numbers with few distinct values become classes unless ``task``
    says regression; other numbers are regression. ``where`` names the file in messages."""
    where = f" in {where}" if where else ""
    if isinstance(column, np.ndarray):
        column = pa.chunked_array([pa.array(column)])
    elif isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    numbers, text, present, how = _read(column, na_values, decimal, keep_markers=task == "classification")
    if present.sum() == 0:
        raise UserError(f"target {name!r} has no values{where}", hint="check --target (and --na-values)")
    numeric = numbers is not None
    if task == "regression" and not numeric:
        example = _first_non_number(text, present, decimal)
        marker = example in NA_MARKERS
        raise UserError(
            f"--task regression needs a numeric target, but {name!r} holds text such as {example!r}{where}",
            hint=f"pass --na-values {example} to treat it as missing"
            if marker
            else "use --task classification, or pick a numeric --target",
        )
    if numeric:
        kept = numbers[present]
        whole = bool(np.all(kept == np.floor(kept)))
        n_distinct = np.unique(kept).size
        if task is None:
            task = "classification" if _like_classes(kept) else "regression"
        if task == "regression":
            return Target(kept, task, None, present, how)
        if n_distinct > MAX_NUMERIC_CLASSES:
            examples = ", ".join(f"{v:g}" for v in kept[:3])
            raise UserError(
                f"--task classification: target {name!r} has {n_distinct} distinct numbers (such as "
                f"{examples}){where}; that is a regression target",
                hint="use --task regression, or leave --task out",
            )
        classes, ids = np.unique(kept, return_inverse=True)
        labels = tuple(int(c) if whole else float(c) for c in classes.tolist())  # numpy: no sync
        return _classes(name, labels, ids, present, where, how)
    # text: labels as written; numbers among them read as numbers (1, 2, "NA" -> 1, 2, "NA")
    inferred = task is None
    if inferred:
        _refuse_stray_text(name, text, present, decimal, where)
    task = task or "classification"
    kept = pc.filter(text, pa.array(present))
    encoded = kept.dictionary_encode().combine_chunks()
    dictionary = encoded.dictionary.to_pylist()  # one Python object per distinct label, not per cell
    order = sorted(range(len(dictionary)), key=lambda i: _label_key(dictionary[i], decimal))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    ids = rank[encoded.indices.to_numpy(zero_copy_only=False)]
    labels = tuple(_label(dictionary[i], decimal) for i in order)
    if inferred and len(labels) > MAX_INFERRED_CLASSES and 2 * len(labels) > len(ids):
        shown = ", ".join(repr(label) for label in labels[:3])
        raise UserError(
            f"target {name!r}{where} has {len(labels)} different values in {len(ids)} rows (such as {shown}): "
            "most classes would have one row and none to test them on",
            hint="check --target (is it a name or an ID?); for numbers, fix the cells that are not one; "
            "--task classification keeps them as classes",
        )
    return _classes(name, labels, ids, present, where)


def _like_classes(kept: np.ndarray) -> bool:
    """Few whole numbers, each value shared by several rows: classes (else a regression target)."""
    n_distinct = np.unique(kept).size
    few = n_distinct <= MAX_INFERRED_CLASSES and (n_distinct <= 2 or n_distinct * 3 <= kept.size)
    return few and bool(np.all(kept == np.floor(kept)))


def _refuse_stray_text(name: str, text, present: np.ndarray, decimal: str, where: str) -> None:
    """A column of measurements with a few cells that are no number ("12a", "n.a."): read as text it would
    be one class per value and no test row; refused, naming the first such cell and its data row."""
    kept = normalize(pc.filter(text, pa.array(present)))
    fmt, _share = find_format(kept, decimal)
    values, ok = parse(kept, fmt)
    ok = pc.fill_null(ok, False).to_numpy(zero_copy_only=False).astype(bool)
    bad = np.flatnonzero(~ok)
    if bad.size == 0 or bad.size * 20 > ok.size:  # more than 5% text: a text column
        return
    numbers = pc.filter(values, pa.array(ok)).to_numpy(zero_copy_only=False).astype(np.float64)
    if _like_classes(numbers):  # classes 0, 1, 2 and a text class ("unknown") are labels
        return
    example, row = kept[int(bad[0])].as_py(), int(np.flatnonzero(present)[bad[0]]) + 1
    raise UserError(
        f"target {name!r}{where} holds numbers except {bad.size} cell(s) such as {example!r} in data row {row}",
        hint=f"fix them, pass --na-values {example} to take them as missing, or --task classification to "
        "keep each value as a class",
    )


def _read(
    column: pa.ChunkedArray, na_values, decimal, *, keep_markers: bool = False
) -> tuple[np.ndarray | None, pa.ChunkedArray, np.ndarray, str]:
    """``(numbers or None, text, present, how)`` of a target column. ``keep_markers``: "NA"-like cells
    among numbers stay labels (--task classification) instead of being missing."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        if (
            pa.types.is_integer(column.type)
            or pa.types.is_floating(column.type)
            or pa.types.is_boolean(column.type)
        ):
            numbers = column.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
            present = np.isfinite(numbers)
            return numbers, column.cast(pa.string()), present, ""
        column = column.cast(pa.string())
    if column.null_count == 0 and not keep_markers:
        try:  # plain numbers everywhere (the common case): one cast, no regex
            numbers = column.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
            if not np.isnan(numbers).any():
                return numbers, column, np.isfinite(numbers), ""
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    text = pc.utf8_trim_whitespace(pc.fill_null(column, ""))
    missing = pc.or_(pc.equal(text, ""), pc.is_in(text, value_set=pa.array(list(na_values), pa.string())))
    present = np.invert(missing.to_numpy(zero_copy_only=False).astype(bool))
    kept = normalize(pc.filter(text, pa.array(present)))
    if not len(kept):
        return None, text, present, ""
    markers = pc.is_in(kept, value_set=pa.array(NA_MARKERS, pa.string()))
    n_markers = pc.sum(markers).as_py() or 0
    if n_markers == len(kept) or (n_markers and keep_markers):
        return None, text, present, ""
    fmt = NumberFormat(decimal=decimal)
    values, ok = parse(kept, fmt)
    if not pc.all(pc.or_(ok, markers)).as_py():
        fmt, _ = find_format(pc.if_else(markers, None, kept), decimal)
        values, ok = parse(kept, fmt)
        if not pc.all(pc.or_(ok, markers)).as_py():
            return None, text, present, ""
    numbers = np.full(len(text), np.nan)
    numbers[present] = pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False)
    how = [fmt.describe()] if fmt.describe() else []
    if n_markers:
        shown = ", ".join(repr(m) for m in pc.unique(pc.filter(kept, markers)).to_pylist()[:3])
        how.append(f"{n_markers} {shown} cell(s) taken as missing (--task classification keeps them)")
    return numbers, text, present & np.isfinite(numbers), "; ".join(how)


def _first_non_number(text: pa.ChunkedArray, present: np.ndarray, decimal: str) -> str:
    kept = pc.filter(text, pa.array(present))
    as_number = pc.replace_substring(kept, ",", ".") if decimal == "," else kept
    return pc.filter(kept, pc.invert(pc.match_substring_regex(as_number, PLAIN)))[0].as_py()


def _label_key(text: str, decimal: str) -> tuple:
    value = _label(text, decimal)
    return (0, value, "") if isinstance(value, int | float) else (1, 0, value)


def _label(text: str, decimal: str) -> int | float | str:
    """A label as the file writes it: numbers as numbers (``1``, ``2.5``), anything else as text."""
    import re

    candidate = text.replace(",", ".") if decimal == "," else text
    if re.match(PLAIN, candidate):
        value = float(candidate)
        return int(value) if value.is_integer() else value
    return text


def _classes(
    name: str, labels: tuple, ids: np.ndarray, present: np.ndarray, where: str, how: str = ""
) -> Target:
    if len(labels) < 2 and isinstance(labels[0], int | float):  # a constant number: not a class question
        raise UserError(
            f"target {name!r} has the same value ({labels[0]!r}) in every row{where}",
            hint="there is nothing to learn from it; check --target",
        )
    if len(labels) < 2:
        raise UserError(
            f"target {name!r} has a single class ({labels[0]!r}){where}",
            hint="classification needs at least two classes; check --target",
        )
    return Target(np.asarray(ids, dtype=np.int64), "classification", labels, present, how)
