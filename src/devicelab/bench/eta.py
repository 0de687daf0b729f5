"""Two remaining-time estimators, sampled through a run and scored against the real remaining time.

- ``smoothed``: tqdm's estimate: exponential moving averages (smoothing 0.3, bias-corrected) of the epochs
  done and the time taken between updates; remaining = epochs left / (ema_epochs / ema_time).
- ``mean``: the cumulative mean: remaining = epochs left * elapsed / epochs done.

A run records the clock at a few evenly spaced epochs (``Marks``); the real remaining time at each mark is
known once the run has ended, so each estimate's error is measured, not guessed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SMOOTHING = 0.3  # tqdm's default


def mark_epochs(epochs: int, samples: int = 50) -> tuple[int, ...]:
    """Up to ``samples`` evenly spaced epochs in ``1..epochs``, the last one included."""
    samples = max(1, min(samples, epochs))
    return tuple(sorted({round(epochs * (i + 1) / samples) for i in range(samples)}))


class Marks:
    """The clock at chosen epochs of a run; ``tick(epoch)`` is called once per epoch by the loop."""

    def __init__(self, epochs: int, samples: int = 50, clock: Callable[[], float] = time.perf_counter):
        self.epochs = epochs
        self.at = mark_epochs(epochs, samples)
        self.clock = clock
        self.times: list[float] = []
        self.start_time = 0.0
        self._next = self.at[0]

    def start(self) -> None:
        self.times.clear()
        self._next = self.at[0]
        self.start_time = self.clock()

    def tick(self, epoch: int) -> None:
        if epoch == self._next:
            self.times.append(self.clock())
            self._next = self.at[len(self.times)] if len(self.times) < len(self.at) else -1


class _Ema:
    """tqdm.utils.EMA: an exponential moving average with bias correction."""

    def __init__(self, alpha: float = SMOOTHING) -> None:
        self.alpha, self.last, self.calls = alpha, 0.0, 0

    def __call__(self, x: float) -> float:
        self.last = self.alpha * x + (1 - self.alpha) * self.last
        self.calls += 1
        return self.last / (1 - (1 - self.alpha) ** self.calls)


def smoothed_estimates(epochs: int, at: Sequence[int], times: Sequence[float], start: float) -> list[float]:
    """tqdm-style remaining-time estimate at each mark."""
    ema_dn, ema_dt = _Ema(), _Ema()
    estimates, n_prev, t_prev = [], 0, start
    for n, t in zip(at, times, strict=True):
        dn, dt = ema_dn(n - n_prev), ema_dt(t - t_prev)
        estimates.append((epochs - n) * dt / dn if dn > 0 else float("inf"))
        n_prev, t_prev = n, t
    return estimates


def mean_estimates(epochs: int, at: Sequence[int], times: Sequence[float], start: float) -> list[float]:
    """Cumulative-mean remaining-time estimate at each mark."""
    return [(epochs - n) * (t - start) / n for n, t in zip(at, times, strict=True)]


@dataclass(frozen=True)
class EtaError:
    """Median absolute error of each estimator over the marks of one run (seconds and fraction)."""

    smoothed_s: float
    mean_s: float
    smoothed_rel: float
    mean_rel: float


def eta_error(marks: Marks, end: float) -> EtaError:
    """Score both estimators of a finished run against the real remaining time ``end - t``."""
    points = [(n, t) for n, t in zip(marks.at, marks.times, strict=False) if n < marks.epochs]
    if not points:
        return EtaError(0.0, 0.0, 0.0, 0.0)
    at, times = [n for n, _ in points], [t for _, t in points]
    real = [end - t for t in times]
    scores = []
    for estimates in (
        smoothed_estimates(marks.epochs, at, times, marks.start_time),
        mean_estimates(marks.epochs, at, times, marks.start_time),
    ):
        errors = [abs(e - r) for e, r in zip(estimates, real, strict=True)]
        relative = [err / r for err, r in zip(errors, real, strict=True) if r > 0]
        scores.append((statistics.median(errors), statistics.median(relative) if relative else 0.0))
    (s_abs, s_rel), (m_abs, m_rel) = scores
    return EtaError(s_abs, m_abs, s_rel, m_rel)
