from __future__ import annotations

import statistics

from devicelab.timing import Measurement, measure


def test_measurement_statistics_match_statistics_module():
    times = (0.5, 0.1, 0.3, 0.2, 0.4)
    m = Measurement(times)
    assert m.median == statistics.median(times)
    q = statistics.quantiles(times, n=4, method="inclusive")
    assert abs(m.q1 - q[0]) < 1e-12 and abs(m.q3 - q[2]) < 1e-12
    assert m.noisy  # IQR 0.2 s around a median of 0.3 s
    assert (m.min, m.max, m.iqr) == (0.1, 0.5, m.q3 - m.q1)
    assert m.to_dict() == {"median_s": 0.3, "iqr_s": m.iqr, "min_s": 0.1, "max_s": 0.5, "repeats": 5}


def test_a_tight_measurement_is_not_noisy():
    # quartiles 0.99 and 1.01: IQR 0.02 s, 2% of the median (the threshold is 10%)
    assert not Measurement((0.98, 0.99, 1.0, 1.01, 1.02)).noisy
    assert not Measurement((0.0, 0.0, 0.0)).noisy  # a zero median is never called noisy


def test_measure_calls_sync_around_every_repeat():
    events = []
    clock_values = iter(range(100))
    m = measure(
        lambda: events.append("fn"),
        sync=lambda: events.append("sync"),
        warmup=1,
        repeats=2,
        number=2,
        clock=lambda: float(next(clock_values)),
    )
    assert events == ["fn", "sync", "sync", "fn", "fn", "sync", "sync", "fn", "fn", "sync"]
    assert m.times == (0.5, 0.5)
