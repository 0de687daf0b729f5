"""Numbers as spreadsheets and exports write them: ``"50,222"``, ``"$1,227.92"``, ``39%``, ``(1,234)``,
``1.234,5 €``, ``1'000``, ``12 345``, ``1.2e3``.

A column's format is found once, from its distinct cells, and is the same for every cell (one thousands
separator, one decimal mark); it is recorded, so predict reads new files the same way. The parsing itself
runs in pyarrow compute over the whole column: no Python object per cell.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import pyarrow as pa
import pyarrow.compute as pc

PLAIN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"  # what pyarrow's cast to float64 takes
_SYMBOLS = "$€£¥₹₩₽₺₪฿₫₴₦¢"
_CODES = (
    "USD", "EUR", "GBP", "JPY", "CNY", "RMB", "CHF", "CAD", "AUD", "NZD", "HKD", "SGD", "INR", "KRW",
    "RUB", "BRL", "MXN", "SEK", "NOK", "DKK", "PLN", "ZAR", "TRY", "CZK", "HUF", "ILS", "THB",
)  # fmt: skip
# a currency: a symbol (with a country prefix such as US$, R$, HK$) or an ISO code
_CURRENCY = rf"(?:[A-Z]{{0,2}}[{re.escape(_SYMBOLS)}]|{'|'.join(_CODES)})"
_SPACES = "\u00a0\u2009\u202f\u2007"  # no-break, thin, narrow no-break and figure spaces: as " "
_APOSTROPHES = "\u2019\u02bc"  # typographic apostrophes: as "'" (Swiss thousands)
# (thousands, decimal) pairs tried, in order of preference for a file whose decimal mark is "." / ","
_CANDIDATES = {
    ".": (("", "."), (",", "."), ("", ","), (".", ","), ("'", "."), (" ", "."), (" ", ","), ("'", ",")),
    ",": (("", ","), (".", ","), ("", "."), (",", "."), (" ", ","), ("'", ","), ("'", "."), (" ", ".")),
}
SAMPLE = 2000  # distinct cells looked at to find a column's format
_ENOUGH = 0.95  # a format that reads this share of them is taken (1 - columns.MAX_BAD_NUMBERS)


@dataclass(frozen=True)
class NumberFormat:
    """How a column writes its numbers: removed before pyarrow casts the cells to float64."""

    thousands: str = ""  # "," "." "'" " " or "" (none)
    decimal: str = "."
    currency: tuple[str, ...] = ()  # symbols and codes seen (stripped), e.g. ("$",)
    percent: bool = False  # cells ending in % are divided by 100
    accounting: bool = False  # (1,234) is -1234

    @property
    def plain(self) -> bool:
        return self == NumberFormat(decimal=self.decimal) and self.decimal == "."

    def describe(self) -> str:
        """What was done to the cells, for the role table ("" when nothing)."""
        parts = []
        if self.thousands:
            parts.append(f"thousands separator {self.thousands!r} removed")
        if self.decimal == ",":
            parts.append("decimal comma")
        if self.currency:
            parts.append(f"{', '.join(repr(c) for c in self.currency)} stripped")
        if self.percent:
            parts.append("'%' -> fraction (39% = 0.39)")
        if self.accounting:
            parts.append("(1,234) -> -1234")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {**asdict(self), "currency": list(self.currency)}

    @classmethod
    def from_dict(cls, d: dict | None) -> NumberFormat:
        if not d:
            return cls()
        return cls(d["thousands"], d["decimal"], tuple(d["currency"]), d["percent"], d["accounting"])


def normalize(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Trimmed cells with every kind of space as " " and typographic apostrophes as "'"."""
    if pc.any(pc.match_substring_regex(text, f"[{_SPACES}{_APOSTROPHES}]")).as_py():
        text = pc.replace_substring_regex(text, f"[{_SPACES}]", " ")
        text = pc.replace_substring_regex(text, f"[{_APOSTROPHES}]", "'")
    return pc.utf8_trim_whitespace(text)


def find_format(text: pa.ChunkedArray, decimal: str = ".") -> tuple[NumberFormat, float]:
    """``(format, share of the distinct cells that fit it)`` of a column of trimmed text (null for missing): the first
    candidate (the file's decimal mark first, no thousands separator first) that reads nearly every
    distinct cell, else the one that reads the most."""
    sample = pc.unique(pc.drop_null(text))
    if len(sample) > SAMPLE:
        sample = sample.slice(0, SAMPLE)
    body, signs = _strip_decorations(sample)
    currency = _currencies(sample)
    percent = (pc.sum(pc.ends_with(sample, "%")).as_py() or 0) > 0
    accounting = (pc.sum(signs).as_py() or 0) > 0
    best, best_count = NumberFormat(decimal=decimal), -1
    for thousands, mark in _CANDIDATES[decimal]:
        count = pc.sum(pc.match_substring_regex(body, _pattern(thousands, mark))).as_py() or 0
        if count > best_count:
            best, best_count = NumberFormat(thousands, mark, currency, percent, accounting), count
        if count >= _ENOUGH * len(sample):
            break  # the first reading, in order of preference, that reads (nearly) every cell
    return best, best_count / max(len(sample), 1)


def parse(text: pa.ChunkedArray, fmt: NumberFormat) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """``(float64 column, ok)`` of trimmed text read in ``fmt``; cells that do not fit are null, ok False."""
    if fmt.plain:
        ok = pc.match_substring_regex(text, PLAIN)
        return pc.if_else(ok, text, None).cast(pa.float64()), ok
    body, negative = _strip_decorations(text) if fmt.accounting else (text, None)
    percent = pc.ends_with(body, "%") if fmt.percent else None
    if fmt.currency or fmt.percent:
        body = _strip_currency_percent(body)
    ok = pc.match_substring_regex(body, _pattern(fmt.thousands, fmt.decimal))
    if fmt.thousands:
        body = pc.replace_substring(body, fmt.thousands, "")
    if fmt.decimal == ",":
        body = pc.replace_substring(body, ",", ".")
    numbers = pc.if_else(ok, body, None).cast(pa.float64())
    if negative is not None:
        numbers = pc.if_else(pc.fill_null(negative, False), pc.negate(numbers), numbers)
    if percent is not None:
        numbers = pc.if_else(pc.fill_null(percent, False), pc.divide(numbers, 100.0), numbers)
    return numbers, ok


def _pattern(thousands: str, decimal: str) -> str:
    """A number in that format, with an optional sign and exponent (no exponent with thousands)."""
    d = re.escape(decimal)
    plain = rf"(\d+{d}?\d*|{d}\d+)([eE][+-]?\d+)?"
    if not thousands:
        return rf"^[+-]?{plain}$"
    t = re.escape(thousands)
    return rf"^[+-]?({plain}|\d{{1,3}}({t}\d{{3}})+({d}\d*)?)$"


def _strip_decorations(text: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """``(cells without accounting parentheses, currency or %, which were in parentheses)``."""
    negative = pc.match_substring_regex(text, r"^\(.*\)$")
    body = pc.replace_substring_regex(text, r"^\((.*)\)$", r"\1")
    return _strip_currency_percent(body), negative


def _strip_currency_percent(text: pa.ChunkedArray) -> pa.ChunkedArray:
    text = pc.replace_substring_regex(text, rf"^([+-]?) ?{_CURRENCY} ?", r"\1")
    text = pc.replace_substring_regex(text, rf" ?(?:{_CURRENCY}|%)$", "")
    return pc.utf8_trim_whitespace(text)


def _currencies(sample: pa.Array) -> tuple[str, ...]:
    found = pc.extract_regex(sample, rf"^\(?[+-]?\s?(?P<a>{_CURRENCY})|(?P<b>{_CURRENCY})\)?%?$")
    seen = set()
    for field in ("a", "b"):
        seen.update(v for v in pc.unique(pc.struct_field(found, field)).to_pylist() if v)
    return tuple(sorted(seen))
