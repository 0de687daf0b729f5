"""The regime verdict as a pure function of timings, and the probe that feeds it."""

from __future__ import annotations

import pytest
import torch

from devicelab.data import load_dataset
from devicelab.profile import regime
from devicelab.training.config import TrainConfig

WORK = [8_400 * k for k in (1, 4, 16, 64)]


def test_flat_times_are_overhead_bound():
    seconds = [200e-6, 203e-6, 199e-6, 206e-6]  # 64x the work, the same time
    result = regime.decide_regime(WORK, seconds)
    assert result.verdict == regime.OVERHEAD
    assert result.fixed_share > 0.95
    assert result.work_growth == 64
    assert result.time_growth == pytest.approx(206 / 200)


def test_linear_times_are_compute_bound():
    seconds = [1e-9 * w for w in WORK]  # time proportional to the work
    result = regime.decide_regime(WORK, seconds)
    assert result.verdict == regime.COMPUTE
    assert result.fixed_share == pytest.approx(0.0, abs=1e-9)
    assert result.per_mac_s == pytest.approx(1e-9)
    assert result.time_growth == pytest.approx(64)


def test_fixed_plus_linear_recovers_both_parts_and_the_crossover():
    fixed, per_mac = 100e-6, 100e-6 / (8 * 8_400)  # the growing part equals the fixed part at 8x
    seconds = [fixed + per_mac * w for w in WORK]
    result = regime.decide_regime(WORK, seconds)
    assert result.fixed_s == pytest.approx(fixed)
    assert result.per_mac_s == pytest.approx(per_mac)
    assert result.crossover == pytest.approx(8)
    assert result.fixed_share == pytest.approx(8 / 9)
    assert result.verdict == regime.OVERHEAD


def test_half_fixed_half_growing_is_mixed():
    fixed, per_mac = 50e-6, 50e-6 / 8_400  # at 1x the step is half fixed, half work
    result = regime.decide_regime(WORK, [fixed + per_mac * w for w in WORK])
    assert result.fixed_share == pytest.approx(0.5)
    assert result.verdict == regime.MIXED


def test_noise_that_shrinks_with_work_is_not_a_negative_cost():
    result = regime.decide_regime(WORK, [210e-6, 205e-6, 200e-6, 199e-6])
    assert result.per_mac_s == 0 and result.crossover is None
    assert result.fixed_s == pytest.approx(sum([210e-6, 205e-6, 200e-6, 199e-6]) / 4)
    assert result.verdict == regime.OVERHEAD


def test_needs_two_points():
    with pytest.raises(ValueError):
        regime.decide_regime([1.0], [1.0])


def test_suggestions_depend_on_regime_and_device():
    overhead = regime.decide_regime(WORK, [200e-6] * 4)
    compute = regime.decide_regime(WORK, [1e-9 * w for w in WORK])
    cpu_tips = " ".join(regime.suggestions(overhead, "cpu", threads=4))
    assert "one CPU thread" in cpu_tips and "larger batch" in cpu_tips and "several models" in cpu_tips
    assert "CUDA graph" not in cpu_tips
    assert "one CPU thread" not in " ".join(regime.suggestions(overhead, "cpu", threads=1))
    gpu_tips = " ".join(regime.suggestions(overhead, "cuda", threads=4))
    assert "CUDA graph" in gpu_tips and "one CPU thread" not in gpu_tips
    compute_tips = " ".join(regime.suggestions(compute, "cpu", threads=4))
    assert "larger batch" not in compute_tips and "bf16" in compute_tips


def test_probe_times_the_scaled_workloads():
    config = TrainConfig()
    dataset = load_dataset(config)
    probe = regime.probe_regime(config, dataset, torch.device("cpu"), batch_factors=(1, 4), width_factor=4)
    labels = [p.label for p in probe.points]
    assert labels == ["batch ×1", "batch ×4", "width ×4"]
    one, four, wide = probe.points
    assert (one.batch, one.hidden, one.macs) == (120, (10,), 120 * (4 * 10 + 10 * 3))
    assert (four.batch, four.macs) == (480, 480 * (4 * 10 + 10 * 3))
    assert (wide.batch, wide.hidden, wide.macs) == (120, (40,), 120 * (4 * 40 + 40 * 3))
    assert all(p.seconds > 0 and p.seconds <= p.median_s for p in probe.points)
    assert probe.regime == regime.decide_regime(
        [p.macs for p in probe.points], [p.seconds for p in probe.points]
    )
    assert probe.suggestions == regime.suggestions(probe.regime, "cpu", probe.threads)


def test_sizes_too_large_for_memory_are_skipped_not_run():
    """A big CSV's full batch ×64 would need tens of GB: sizes over the element budget are not built."""
    config = TrainConfig()
    dataset = load_dataset(config)  # 120 training rows, 4 features, 3 classes, hidden 10
    params = (4 + 1) * 10 + (10 + 1) * 3
    assert regime.step_elements(config, dataset, 4, 1) == 480 * (4 + 3 + 2 * 10) + 4 * params
    probe = regime.probe_regime(config, dataset, torch.device("cpu"), max_elements=20_000)
    assert [p.label for p in probe.points] == ["batch ×1", "batch ×4", "width ×4"]
    assert probe.skipped == ("batch ×16", "batch ×64")
    assert probe.to_dict()["skipped"] == ["batch ×16", "batch ×64"]
    assert regime.probe_regime(config, dataset, torch.device("cpu"), max_elements=1) is None  # only ×1 left
