"""The step breakdown: phases of the real step, operator counts against a known step, clocks."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from devicelab.data import load_dataset
from devicelab.profile import phases
from devicelab.profile.clocks import PerfClock, clock_for
from devicelab.training.config import TrainConfig
from devicelab.training.workload import build_workload

CPU = torch.device("cpu")


def test_breakdown_of_the_seed_step():
    config = TrainConfig()
    work = build_workload(config, load_dataset(config), CPU)
    before = [p.detach().clone() for p in work.model.parameters()]
    result = phases.step_breakdown(work, steps=5)
    assert [p.name for p in result.phases] == ["forward", "loss", "backward", "optimizer", "other"]
    assert all(p.host_s > 0 and p.device_s is None for p in result.phases)
    assert sum(result.share(p) for p in result.phases) == pytest.approx(1.0)
    assert result.step_s > 0
    assert result.launches.kernels is None and result.gpu_busy_fraction is None
    # the instrumented loop really trains: SGD moved every parameter
    assert all(not torch.equal(a, b) for a, b in zip(before, work.model.parameters(), strict=True))
    # the loss of each instrumented step went into the buffer, as devicelab's step does
    assert torch.count_nonzero(work.losses[:5]) == 5


@pytest.mark.parametrize(
    ("config", "kind"), [(TrainConfig(), "plain_sgd"), (TrainConfig(momentum=0.9), "optim")]
)
def test_phases_come_from_the_real_step_watched_from_outside(config, kind):
    """No copy of the step: the watch runs ``work.repeated_step()`` itself, so the model trains exactly as
    a plain loop of the same step trains it (the reference, beside it)."""
    dataset = load_dataset(config)
    watched, plain = build_workload(config, dataset, CPU), build_workload(config, dataset, CPU)
    assert watched.kind == plain.kind == kind
    calls = []

    def counted(*args):
        calls.append(1)
        return watched.step(*args)

    watch = phases.watch_steps(dataclasses.replace(watched, step=counted), steps=3, warmup=1)
    # the watch stops the loop in the last step: at optimizer.step()'s end (its update made, its loss not
    # recorded) or, with no optimizer, at backward()'s end (neither)
    n = len(calls) - 1
    step = plain.repeated_step()
    for i in range(len(calls) if kind == "optim" else n):
        step(i)
    assert torch.equal(watched.losses[:n], plain.losses[:n])
    for a, b in zip(watched.model.parameters(), plain.model.parameters(), strict=True):
        assert torch.equal(a, b)
    result = phases.time_phases(watch)
    assert {p.name: p.host_s > 0 for p in result} == {
        "forward": True,
        "loss": True,
        "backward": True,
        "optimizer": True,
        "other": True,
    }  # plain SGD's hand-written update is "optimizer" by its place: between backward and the next forward


def test_operator_count_of_a_known_step():
    a, b, out = torch.ones(4), torch.ones(4), torch.empty(4)

    def step(i: int) -> None:
        torch.add(a, b, out=out)  # three top-level operators; add's internals are not counted
        torch.mul(out, 2.0, out=out)
        out.zero_()

    launches = phases.count_launches(step, CPU, steps=4)
    assert launches.operators == 3
    assert launches.kernels is None and launches.gpu_busy_s is None


def test_busy_time_is_the_union_of_intervals():
    # microseconds: [0, 10] and [5, 15] overlap -> 15; [20, 30] adds 10; [22, 25] is inside it
    assert phases._busy_seconds([(0, 10), (5, 15), (20, 30), (22, 25)]) == 25e-6
    assert phases._busy_seconds([]) == 0.0


def test_perf_clock_stamps_and_intervals():
    clock = PerfClock(capacity=1)
    marks = [clock.mark() for _ in range(5)]  # grows past its capacity
    assert marks == [0, 1, 2, 3, 4]
    assert all(clock.seconds(a, b) >= 0 for a, b in itertools.pairwise(marks))
    assert clock.seconds(0, 4) == pytest.approx(sum(clock.seconds(a, a + 1) for a in range(4)))
    assert isinstance(clock_for(CPU), PerfClock)


def test_a_phase_share_in_advice_is_of_the_watched_step_never_above_all_of_it():
    """Phase means include slow first batches (a DataLoader starting its workers) while the bare step is a
    median: the data phase's mean can exceed that median. Its share is of the phases' sum (closed form here),
    and the saving is that share of the bare step."""
    from devicelab.profile import advice
    from devicelab.profile.phases import Phase, StepBreakdown

    phases = (Phase("data", 2.0e-3, None), Phase("forward", 0.5e-3, None), Phase("backward", 0.5e-3, None))
    breakdown = StepBreakdown(phases, 1.5e-3, 0.0, None, 100, "script")
    regime = advice.verdict(breakdown, None, (), "cpu", 1)
    assert regime.regime == advice.INPUT and "67%" in regime.evidence  # 2.0 of 3.0 ms, not 133% of 1.5
    (tip,) = [
        a for a in advice.rank(breakdown, None, (), regime, "cpu", 1) if a.finding.startswith("load data")
    ]
    assert tip.evidence == "data takes 67% of the step"
    assert abs(tip.saving_s - (2.0 / 3.0) * 1.5e-3 * 0.8) < 1e-12
