"""The two remaining-time estimators against closed forms, with an injected clock."""

from __future__ import annotations

import pytest

from devicelab.bench.eta import Marks, eta_error, mark_epochs, mean_estimates, smoothed_estimates


def test_mark_epochs_are_evenly_spaced_and_end_at_the_last_epoch():
    assert mark_epochs(1000, 4) == (250, 500, 750, 1000)
    assert mark_epochs(3, 50) == (1, 2, 3)


class Clock:
    """A clock the test moves by hand; Marks reads ``now``."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_marks(epochs, seconds_per_epoch, samples=10):
    clock = Clock()
    marks = Marks(epochs, samples, clock=clock)
    marks.start()
    for epoch in range(1, epochs + 1):
        clock.now += seconds_per_epoch(epoch)
        marks.tick(epoch)
    return marks, clock.now


def test_a_steady_run_is_estimated_exactly_by_both():
    marks, end = run_marks(1000, lambda e: 0.002)
    assert len(marks.times) == 10
    err = eta_error(marks, end)
    assert err.smoothed_s == pytest.approx(0, abs=1e-12)
    assert err.mean_s == pytest.approx(0, abs=1e-12)


def test_a_slowdown_is_caught_faster_by_the_smoothed_estimate():
    # 1 ms per epoch for the first half, 3 ms for the second: the mean lags behind
    marks, end = run_marks(1000, lambda e: 0.001 if e <= 500 else 0.003)
    at, times = list(marks.at), marks.times
    mean = mean_estimates(1000, at, times, 0.0)
    # at epoch 700: elapsed 0.5 + 0.6 = 1.1 s, mean rate 1.1/700 s per epoch, 300 left
    assert mean[6] == pytest.approx(300 * 1.1 / 700)
    assert end - times[6] == pytest.approx(0.9)
    smoothed = smoothed_estimates(1000, at, times, 0.0)
    assert abs(smoothed[6] - 0.9) < abs(mean[6] - 0.9)


def test_smoothed_estimate_is_tqdm_ema_with_bias_correction():
    at, times = [10, 20], [1.0, 3.0]  # 10 epochs in 1 s, then 10 epochs in 2 s
    est = smoothed_estimates(100, at, times, 0.0)
    assert est[0] == pytest.approx(90 * 1.0 / 10)
    # ema_dt = (0.3*2 + 0.7*0.3*1) / (1 - 0.49); ema_dn = 10 (constant)
    ema_dt = (0.3 * 2 + 0.7 * 0.3 * 1) / (1 - 0.7**2)
    assert est[1] == pytest.approx(80 * ema_dt / 10)
