"""Line charts as inline SVG: crisp at any size, printable, no matplotlib and no JavaScript.

``line_chart([Series("train loss", xs, ys)], x_label="epoch", log_y=True)`` returns an ``<svg>`` element
that scales to its container's width (``viewBox``); colours come from the page's CSS classes ``s0``..``s5``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

W, H = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 30, 28, 42
MAX_DOTS = 60  # more markers than this hide the line: draw the line alone


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


def line_chart(
    series: Sequence[Series], *, x_label: str, y_label: str = "", log_y: bool = False, title: str = ""
) -> str:
    pairs = [
        (float(a), float(b))
        for s in series
        for a, b in zip(s.x, s.y, strict=True)
        if math.isfinite(float(b)) and (not log_y or float(b) > 0)
    ]
    if not pairs:
        return ""
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    fy = math.log10 if log_y else float
    x_ticks = nice_ticks(min(xs), max(xs))
    if log_y:
        lo, hi = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
        y_ticks = [float(e) for e in range(lo, max(hi, lo + 1) + 1)]
    else:
        y_ticks = nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(v: float) -> float:
        return LEFT + (v - x0) / ((x1 - x0) or 1) * (W - LEFT - RIGHT)

    def py(v: float) -> float:
        return H - BOTTOM - (fy(v) - y0) / ((y1 - y0) or 1) * (H - TOP - BOTTOM)

    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title or y_label)}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for t in x_ticks:
        parts.append(
            f'<line class="grid" x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{TOP}" y2="{H - BOTTOM}"/>'
            f'<text class="tick" x="{px(t):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{_label(t)}</text>'
        )
    for t in y_ticks:
        y = H - BOTTOM - (t - y0) / ((y1 - y0) or 1) * (H - TOP - BOTTOM)
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
            f'<text class="axis" x="14" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" '
            f'transform="rotate(-90 14 {(TOP + H - BOTTOM) / 2})">{escape(y_label)}</text>'
        )
    legend_x = LEFT
    for i, s in enumerate(series):
        cls = f"s{i % 6}"
        points = [
            (px(float(a)), py(float(b)))
            for a, b in zip(s.x, s.y, strict=True)
            if math.isfinite(float(b)) and (not log_y or float(b) > 0)
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline class="line {cls}" points="{path}"/>')
        if (s.points and len(points) <= MAX_DOTS) or len(points) == 1:
            parts += [f'<circle class="dot {cls}" cx="{x:.1f}" cy="{y:.1f}" r="3"/>' for x, y in points]
        parts.append(
            f'<rect class="key {cls}" x="{legend_x}" y="8" width="12" height="4"/>'
            f'<text class="legend" x="{legend_x + 16}" y="14">{escape(s.name)}</text>'
        )
        legend_x += 28 + 7 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)
