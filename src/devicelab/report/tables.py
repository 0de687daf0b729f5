"""Plain-text and Markdown tables (no dependency: the columns are aligned by hand)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def display_width(text: str) -> int:
    """Terminal columns: a CJK character (wide or full-width) takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _ljust(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def _rjust(text: str, width: int) -> str:
    return " " * (width - display_width(text)) + text


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _numeric(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("%x"))
        return True
    except ValueError:
        return False


def format_table(rows: Sequence[Sequence[object]], headers: Sequence[str], *, indent: str = "") -> str:
    """Columns aligned with two spaces between them; numbers right-aligned."""
    text = [[_cell(v) for v in row] for row in rows]
    widths = [display_width(h) for h in headers]
    for row in text:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))
    lines = [indent + "  ".join(_ljust(h, w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append(indent + "  ".join("-" * w for w in widths))
    for row in text:
        cells = [_rjust(c, w) if _numeric(c) else _ljust(c, w) for c, w in zip(row, widths, strict=True)]
        lines.append(indent + "  ".join(cells).rstrip())
    return "\n".join(lines)


def format_markdown_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(esc(_cell(v)) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def format_key_values(pairs: Sequence[tuple[str, object]], *, indent: str = "  ") -> str:
    """``key: value`` lines with the values aligned."""
    width = max((display_width(k) for k, _ in pairs), default=0)
    return "\n".join(f"{indent}{_ljust(k + ':', width + 1)} {_cell(v)}" for k, v in pairs)
