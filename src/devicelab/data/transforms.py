"""Preprocessing as a few small named steps, each fitted on the training rows (``setup``) and applied to any
rows (``encode``), saved with a run and applied again by ``devicelab predict`` (fastai's ``Categorify``,
``FillMissing``, ``Normalize``).

The encoded matrix is laid out as ``[numbers | missing indicators | one-hot blocks | category codes]``:
numbers (numeric columns and date parts) are scaled; the trailing code columns feed the model's
embeddings. A data set of numbers only is exactly ``Normalize`` of its columns, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devicelab.data.columns import as_float64, parse_dates, text_values, to_numbers
from devicelab.data.numbers import NumberFormat, normalize, parse
from devicelab.data.read import NA_MARKERS
from devicelab.errors import UserError

MAX_ONE_HOT = 30  # categories with at most this many levels are one-hot; more get an embedding
DATE_PARTS = ("year", "month", "day", "weekday", "hour", "minute")
MEDIAN_ROWS = 100_000  # the median of a numeric column is taken over at most this many training rows
UNKNOWN, MISSING = 0, 1  # the code slots of an embedded category before its levels


def embedding_size(n_slots: int) -> int:
    """fastai's rule of thumb for the width of an embedding of ``n_slots`` categories."""
    return int(min(600, round(1.6 * n_slots**0.56)))


@dataclass(frozen=True)
class Scaler:
    """Per-feature affine map ``(x - shift) / scale`` fitted on the training rows (``Normalize``)."""

    kind: str  # "minmax" | "standard" | "none"
    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, kind: str, x: np.ndarray) -> Scaler:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        if kind == "minmax":
            shift, span = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        elif kind == "standard":
            shift, span = x.mean(axis=0), x.std(axis=0)
        elif kind == "none":
            shift, span = np.zeros(x.shape[1]), np.ones(x.shape[1])
        else:
            raise UserError(f"unknown scaler {kind!r}", hint="use minmax, standard or none")
        span = np.where(span == 0, 1.0, span)  # constant columns map to 0, as sklearn does
        return cls(kind, shift, span)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.shift) / self.scale).astype(np.float32)

    def to_dict(self) -> dict:
        # numpy arrays, not device tensors: .tolist() here is no sync
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        return cls(
            d["kind"], np.asarray(d["shift"], dtype=np.float64), np.asarray(d["scale"], dtype=np.float64)
        )


@dataclass
class DateParts:
    """A date/time column becomes numbers: the parts that vary in the training rows."""

    columns: dict[str, dict] = field(default_factory=dict)  # name -> {"format": str, "parts": [str]}

    def setup(self, name: str, dates: pa.ChunkedArray, fmt: str, train: np.ndarray) -> list[str]:
        parts = [p for p in DATE_PARTS if _varies(_part(dates, p)[train])]
        self.columns[name] = {"format": fmt, "parts": parts}
        return [f"{name}_{p}" for p in parts]

    def encode(self, name: str, dates: pa.ChunkedArray) -> list[np.ndarray]:
        return [_part(dates, p) for p in self.columns[name]["parts"]]


def _part(dates: pa.ChunkedArray, part: str) -> np.ndarray:
    values = getattr(pc, "day_of_week" if part == "weekday" else part)(dates)
    return as_float64(values.cast(pa.float64()))


def _varies(values: np.ndarray) -> bool:
    present = values[np.isfinite(values)]
    return present.size > 0 and present.min() != present.max()


@dataclass
class FillMissing:
    """Missing numbers become the training median (of up to MEDIAN_ROWS rows), with a 0/1 ``<name>_na`` column for each column that
    had gaps in the training rows."""

    medians: dict[str, float] = field(default_factory=dict)
    indicators: list[str] = field(default_factory=list)

    def setup(self, name: str, train_values: np.ndarray) -> None:
        gaps = np.isnan(train_values)
        present = train_values[~gaps]
        if present.size > MEDIAN_ROWS:  # an evenly spaced sample of a long column: its median is as good
            present = present[:: -(-present.size // MEDIAN_ROWS)]
        self.medians[name] = float(np.median(present)) if present.size else 0.0
        if gaps.any():
            self.indicators.append(name)

    def encode(self, name: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        gaps = np.isnan(values)
        if not gaps.any():
            return values, (np.zeros(len(values), np.float32) if name in self.indicators else None)
        if name not in self.medians:  # a run of devicelab.fit's arrays: its rows had no gaps to fill
            raise UserError(
                f"the column {name} has {int(gaps.sum())} empty or unreadable cell(s), the first in data row "
                f"{int(np.argmax(gaps)) + 1}, and the run has no value to fill them with (it was trained on "
                "arrays without gaps)",
                hint="fill those cells in the file with numbers (True/False read as 1/0)",
            )
        filled = np.where(gaps, self.medians[name], values)
        return filled, (gaps.astype(np.float32) if name in self.indicators else None)


@dataclass
class Categorify:
    """Text categories become level ids, the levels taken from the training rows (sorted). One-hot columns
    get one 0/1 column per level (and a "(missing)" one when training rows had gaps; an unseen level is
    all zeros); embedded ones get a code: 0 unknown, 1 missing, 2.. the levels."""

    levels: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, bool] = field(default_factory=dict)

    def setup(self, name: str, text: pa.ChunkedArray, train: np.ndarray) -> None:
        seen = text.take(pa.array(train))
        self.levels[name] = sorted(pc.unique(seen).drop_null().to_pylist())  # one Python str per level
        self.missing[name] = seen.null_count > 0

    def codes(self, name: str, text: pa.ChunkedArray) -> np.ndarray:
        """Per row: the level's index, -1 for an unseen level, -2 for a missing cell."""
        index = pc.index_in(text, value_set=pa.array(self.levels[name], pa.string()))
        codes = pc.fill_null(index, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        if text.null_count:
            codes[text.is_null().to_numpy(zero_copy_only=False)] = -2
        return codes

    def one_hot_names(self, name: str) -> list[str]:
        return [f"{name}={level}" for level in self.levels[name]] + (
            [f"{name}=(missing)"] if self.missing[name] else []
        )

    def one_hot(self, name: str, codes: np.ndarray) -> list[np.ndarray]:
        columns = [(codes == i).astype(np.float32) for i in range(len(self.levels[name]))]
        if self.missing[name]:
            columns.append((codes == -2).astype(np.float32))
        return columns

    def embedding_codes(self, codes: np.ndarray) -> np.ndarray:
        return np.where(codes >= 0, codes + 2, np.where(codes == -2, MISSING, UNKNOWN)).astype(np.float32)


@dataclass
class Preprocessor:
    """The steps that turn a table's feature columns into one float32 matrix, fitted on training rows."""

    inputs: list[str]  # the feature columns, in file order
    kinds: dict[str, str]  # name -> "numeric" | "datetime" | "text"
    scaler_kind: str = "minmax"
    dates: DateParts = field(default_factory=DateParts)
    fill: FillMissing = field(default_factory=FillMissing)
    categories: Categorify = field(default_factory=Categorify)
    scaler: Scaler | None = None
    numbers: list[str] = field(default_factory=list)  # the scaled columns (numeric ones and date parts)
    one_hot: list[str] = field(default_factory=list)
    embedded: list[str] = field(default_factory=list)
    na_values: list[str] = field(default_factory=list)  # declared missing markers (--na-values)
    # name -> NumberFormat.to_dict() of the numeric columns written as "$1,234" or "39%" (read the same
    # way by predict)
    number_formats: dict[str, dict] = field(default_factory=dict)

    def setup(self, columns: dict[str, pa.ChunkedArray | np.ndarray], train: np.ndarray) -> None:
        """Fit every step on the rows ``train`` of ``columns`` (prepared values, see ``prepare``)."""
        shifts, scales = [], []
        for name in self.inputs:
            for number, values in self._numbers(name, columns[name], train):
                train_values = values[train]
                self.fill.setup(number, train_values)
                filled, _ = self.fill.encode(number, train_values)
                one = Scaler.fit(self.scaler_kind, filled)
                self.numbers.append(number)
                shifts.append(one.shift[0])
                scales.append(one.scale[0])
            if self.kinds[name] == "text":
                self.categories.setup(name, columns[name], train)
                slots = len(self.categories.levels[name]) + self.categories.missing[name]
                (self.one_hot if slots <= MAX_ONE_HOT else self.embedded).append(name)
        self.scaler = Scaler(self.scaler_kind, np.asarray(shifts, np.float64), np.asarray(scales, np.float64))

    def _numbers(self, name: str, values, train: np.ndarray | None):
        """``(name, float64 values)`` of the numbers a column gives: itself, or its date parts."""
        kind = self.kinds[name]
        if kind == "numeric":
            yield name, values if isinstance(values, np.ndarray) else as_float64(values)
        elif kind == "datetime":
            fmt = self.dates.columns.get(name, {}).get("format", "native")
            if train is not None:
                self.dates.setup(name, values, fmt, train)
            for part, array in zip(
                self.dates.columns[name]["parts"], self.dates.encode(name, values), strict=True
            ):
                yield f"{name}_{part}", array

    @property
    def names(self) -> list[str]:
        """The encoded matrix's columns, in order."""
        hot = [n for name in self.one_hot for n in self.categories.one_hot_names(name)]
        return [*self.numbers, *(f"{n}_na" for n in self.fill.indicators), *hot, *self.embedded]

    @property
    def embeddings(self) -> tuple[tuple[int, int], ...]:
        """``(slots, width)`` of the embedding of each trailing code column."""
        slots = [len(self.categories.levels[name]) + 2 for name in self.embedded]
        return tuple((n, embedding_size(n)) for n in slots)

    def encode(self, columns: dict, row_sets: list[np.ndarray | None]) -> list[np.ndarray]:
        """One float32 matrix per set of rows (None: every row). Columns are taken out of ``columns`` as
        they are encoded, so their memory goes as the matrices fill."""
        n = len(next(iter(columns.values()))) if columns else 0
        sizes = [n if rows is None else len(rows) for rows in row_sets]
        width = len(self.names)
        out = [np.empty((size, width), dtype=np.float32) for size in sizes]
        position = {name: i for i, name in enumerate(self.names)}
        for name in self.inputs:
            values = columns.pop(name)
            blocks: list[tuple[str, np.ndarray]] = []
            for number, array in self._numbers(name, values, None):
                filled, indicator = self.fill.encode(number, array)
                i = self.numbers.index(number)
                scaled = (filled - self.scaler.shift[i]) / self.scaler.scale[i]  # float64, as the lesson
                blocks.append((number, scaled.astype(np.float32)))  # then float32: half the bytes to gather
                if indicator is not None:
                    blocks.append((f"{number}_na", indicator))
            if self.kinds[name] == "text":
                codes = self.categories.codes(name, values)
                if name in self.one_hot:
                    blocks += zip(
                        self.categories.one_hot_names(name), self.categories.one_hot(name, codes), strict=True
                    )
                else:
                    blocks.append((name, self.categories.embedding_codes(codes)))
            for column_name, array in blocks:
                j = position[column_name]
                for matrix, rows in zip(out, row_sets, strict=True):
                    matrix[:, j] = array if rows is None else array[rows]
        return out

    def to_dict(self) -> dict:
        return {
            "inputs": self.inputs,
            "kinds": self.kinds,
            "steps": [
                {"step": "date_parts", "columns": self.dates.columns},
                {"step": "fill_missing", "medians": self.fill.medians, "indicators": self.fill.indicators},
                {
                    "step": "normalize",
                    "columns": self.numbers,
                    **(self.scaler.to_dict() if self.scaler else {}),
                },
                {"step": "categorify", "levels": self.categories.levels, "missing": self.categories.missing},
                {"step": "one_hot", "columns": self.one_hot},
                {"step": "embed", "columns": self.embedded, "sizes": [list(e) for e in self.embeddings]},
            ],
            "encoded_names": self.names,
            "na_values": self.na_values,
            "number_formats": self.number_formats,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessor:
        steps = {s["step"]: s for s in d["steps"]}
        normalize = steps["normalize"]
        return cls(
            inputs=list(d["inputs"]),
            kinds=dict(d["kinds"]),
            scaler_kind=normalize["kind"],
            dates=DateParts(dict(steps["date_parts"]["columns"])),
            fill=FillMissing(
                dict(steps["fill_missing"]["medians"]), list(steps["fill_missing"]["indicators"])
            ),
            categories=Categorify(dict(steps["categorify"]["levels"]), dict(steps["categorify"]["missing"])),
            scaler=Scaler.from_dict(normalize),
            numbers=list(normalize["columns"]),
            one_hot=list(steps["one_hot"]["columns"]),
            embedded=list(steps["embed"]["columns"]),
            na_values=list(d.get("na_values", [])),
            number_formats=dict(d.get("number_formats", {})),
        )

    @classmethod
    def numeric(cls, names: list[str], scaler: Scaler) -> Preprocessor:
        """The preprocessing of a run saved before steps existed: every column a number, scaled."""
        return cls(
            list(names), dict.fromkeys(names, "numeric"), scaler.kind, scaler=scaler, numbers=list(names)
        )

    def prepare(self, name: str, column: pa.ChunkedArray, decimal: str = ".") -> pa.ChunkedArray:
        """A raw column of a file (text or typed) as the values ``encode`` takes: numbers (stray text is
        missing), timestamps (in the training format) or text."""
        kind = self.kinds[name]
        na_values = (*NA_MARKERS, *self.na_values)
        if kind == "numeric":
            if not _is_text(column):
                return to_numbers(column, decimal, na_values)[0]
            # as the training file wrote them; any cell that does not read so is missing
            saved = self.number_formats.get(name)
            fmt = NumberFormat.from_dict(saved) if saved else NumberFormat(decimal=decimal)
            return parse(_bools_as_numbers(normalize(text_values(column, na_values))), fmt)[0]
        if kind == "datetime":
            fmt = self.dates.columns[name]["format"]
            return (
                column.cast(pa.timestamp("s"))
                if fmt == "native" and not _is_text(column)
                else parse_dates(text_values(column, na_values), fmt)
            )
        return text_values(column, na_values)


def _bools_as_numbers(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """True/False cells (as pandas writes a bool column, which devicelab.fit trained on as 1/0) as 1 and 0."""
    lowered = pc.utf8_lower(text)
    return pc.if_else(pc.equal(lowered, "true"), "1", pc.if_else(pc.equal(lowered, "false"), "0", text))


def _is_text(column: pa.ChunkedArray) -> bool:
    return pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
