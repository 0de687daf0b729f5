"""Timing done the way ``torch.utils.benchmark`` does it: warm up, synchronize before reading the
clock, repeat, and report the median with its spread."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    """Repeated timings of one thing, in seconds per call."""

    times: tuple[float, ...]
    label: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def q1(self) -> float:
        return _quantile(self.times, 0.25)

    @property
    def q3(self) -> float:
        return _quantile(self.times, 0.75)

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def max(self) -> float:
        return max(self.times)

    @property
    def noisy(self) -> bool:
        """True when the spread is more than 10% of the median (torch.utils.benchmark's warning)."""
        return self.median > 0 and self.iqr > 0.1 * self.median

    def to_dict(self) -> dict:
        return {
            "median_s": self.median,
            "iqr_s": self.iqr,
            "min_s": self.min,
            "max_s": self.max,
            "repeats": len(self.times),
        }


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _no_sync() -> None:
    return None


def measure(
    fn: Callable[[], object],
    *,
    sync: Callable[[], None] = _no_sync,
    warmup: int = 2,
    repeats: int = 7,
    number: int = 1,
    label: str = "",
    clock: Callable[[], float] = time.perf_counter,
) -> Measurement:
    """Time ``fn`` called ``number`` times per repeat; returns seconds per call.

    ``sync`` waits for queued device work (``torch.cuda.synchronize`` on a GPU) and is called before
    every clock read, so asynchronous work is inside the interval it belongs to.
    """
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        start = clock()
        for _ in range(number):
            fn()
        sync()
        times.append((clock() - start) / number)
    return Measurement(tuple(times), label)


def calibrate_number(
    fn: Callable[[], object],
    *,
    sync: Callable[[], None] = _no_sync,
    target_s: float = 0.05,
    max_number: int = 1_000_000,
) -> int:
    """How many calls of ``fn`` make one repeat last about ``target_s`` (at least 1)."""
    number = 1
    while number < max_number:
        sync()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= target_s / 4:
            return max(1, min(max_number, int(number * target_s / max(elapsed, 1e-9))))
        number *= 4
    return max_number
