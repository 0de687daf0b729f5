from __future__ import annotations

import statistics

from devicelab.timing import Measurement, measure


def test_measurement_statistics_match_statistics_module():
    times = (0.5, 0.1, 0.3, 0.2, 0.4)
    m = Measurement(times)
    assert m.median == statistics.median(times)
    q = statistics.quantiles(times, n=4, method="inclusive")
    assert abs(m.q1 - q[0]) < 1e-12 and abs(m.q3 - q[2]) < 1e-12
    assert m.noisy


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
