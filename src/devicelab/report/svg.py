"""Line charts as inline SVG: crisp at any size, printable, no matplotlib and no JavaScript.

``line_chart([Series("train loss", xs, ys)], x_label="epoch", log_y=True)`` returns an ``<svg>`` element
that scales to its container's width (``viewBox``); colours come from the page's CSS classes ``s0``..``s5``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from unicodedata import east_asian_width

W, H = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 30, 28, 42
MAX_DOTS = 60  # more markers than this hide the line: draw the line alone
LEGEND_Y, LEGEND_ROW = 14, 16  # the legend's first text baseline, and the height of each further row


@dataclass(frozen=True)
class Series:
    name: str
    x: Sequence[float]
    y: Sequence[float]
    points: bool = False  # markers at each value (few values: log points, cells) instead of a bare line


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if value == int(value) and abs(value) < 1e7:
        return str(int(value))
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.0e}".replace("e+0", "e").replace("e-0", "e-")
    return f"{value:g}"


def downsample(x: Sequence[float], y: Sequence[float], limit: int = 800) -> tuple[list[float], list[float]]:
    """At most ``limit`` points, evenly spaced, always keeping the last."""
    n = len(x)
    if n <= limit:
        return list(x), list(y)
    picks = sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})
    return [x[i] for i in picks], [y[i] for i in picks]


def _shown(x: float, y: float, log_x: bool, log_y: bool) -> bool:
    """A point that can be drawn: a finite value, positive on a log axis."""
    return math.isfinite(float(y)) and (not log_y or float(y) > 0) and (not log_x or float(x) > 0)


def _decades(values: Sequence[float]) -> list[float]:
    """The ticks of a log axis, in log10 units: the powers of ten around ``values``."""
    lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    return [float(e) for e in range(lo, max(hi, lo + 1) + 1)]


def text_width(text: str) -> float:
    """Roughly how wide ``text`` is in the legend's 12 px font: a CJK (wide) character is a full em, a
    Latin one a little over half of one."""
    return sum(12.0 if east_asian_width(c) in "WF" else 7.0 for c in text)


def legend_layout(names: Sequence[str]) -> list[tuple[float, int]]:
    """``(x, baseline y)`` of each legend key: left to right, a new row where the next would not fit."""
    spots, x, y = [], float(LEFT), LEGEND_Y
    for name in names:
        width = 16 + text_width(name) + 12  # the swatch, the text, a gap
        if x > LEFT and x + width - 12 > W - RIGHT:
            x, y = float(LEFT), y + LEGEND_ROW
        spots.append((x, y))
        x += width
    return spots or [(float(LEFT), LEGEND_Y)]


def line_chart(
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str = "",
    log_y: bool = False,
    title: str = "",
    log_x: bool = False,
) -> str:
    pairs = [
        (float(a), float(b))
        for s in series
        for a, b in zip(s.x, s.y, strict=True)
        if _shown(a, b, log_x, log_y)
    ]
    if not pairs:
        return ""
    keys = legend_layout([s.name for s in series])
    top = TOP + keys[-1][1] - LEGEND_Y  # more rows of keys push the plot down
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    fx = math.log10 if log_x else float
    fy = math.log10 if log_y else float
    x_ticks = _decades(xs) if log_x else nice_ticks(min(xs), max(xs))
    y_ticks = _decades(ys) if log_y else nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def sx(u: float) -> float:  # a tick (in log10 units on a log axis) to pixels
        return LEFT + (u - x0) / ((x1 - x0) or 1) * (W - LEFT - RIGHT)

    def px(v: float) -> float:
        return sx(fx(v))

    def py(v: float) -> float:
        return H - BOTTOM - (fy(v) - y0) / ((y1 - y0) or 1) * (H - top - BOTTOM)

    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title or y_label)}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for t in x_ticks:
        parts.append(
            f'<line class="grid" x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" y2="{H - BOTTOM}"/>'
            f'<text class="tick" x="{sx(t):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">'
            f"{_label(10**t) if log_x else _label(t)}</text>"
        )
    for t in y_ticks:
        y = H - BOTTOM - (t - y0) / ((y1 - y0) or 1) * (H - top - BOTTOM)
        shown = _label(10**t) if log_y else _label(t)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{shown}</text>'
        )
    parts.append(
        f'<text class="axis" x="{(LEFT + W - RIGHT) / 2}" y="{H - 6}" text-anchor="middle">{escape(x_label)}</text>'
    )
    if y_label:
        parts.append(
            f'<text class="axis" x="14" y="{(top + H - BOTTOM) / 2}" text-anchor="middle" '
            f'transform="rotate(-90 14 {(top + H - BOTTOM) / 2})">{escape(y_label)}</text>'
        )
    for i, (s, (key_x, key_y)) in enumerate(zip(series, keys, strict=True)):
        cls = f"s{i % 6}"
        points = [
            (px(float(a)), py(float(b))) for a, b in zip(s.x, s.y, strict=True) if _shown(a, b, log_x, log_y)
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline class="line {cls}" points="{path}"/>')
        if (s.points and len(points) <= MAX_DOTS) or len(points) == 1:
            parts += [f'<circle class="dot {cls}" cx="{x:.1f}" cy="{y:.1f}" r="3"/>' for x, y in points]
        parts.append(
            f'<rect class="key {cls}" x="{key_x:.0f}" y="{key_y - 6}" width="12" height="4"/>'
            f'<text class="legend" x="{key_x + 16:.0f}" y="{key_y}">{escape(s.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
