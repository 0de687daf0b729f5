"""The step breakdown: phases of the real step, operator counts against a known step, clocks."""

from __future__ import annotations

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
    ("config", "kind"),
    [
        (TrainConfig(), "plain_sgd"),
        (TrainConfig(momentum=0.9), "optim"),
        (TrainConfig(optimizer="adam"), "optim"),
    ],
)
def test_written_out_phase_loops_train_exactly_like_the_real_step(config, kind):
    dataset = load_dataset(config)
    timed, real = build_workload(config, dataset, CPU), build_workload(config, dataset, CPU)
    assert timed.kind == real.kind == kind
    phases.PHASE_LOOPS[kind](timed, 7, mark=lambda: None)
    step = real.repeated_step()
    for i in range(7):
        step(i)
    assert torch.equal(timed.losses, real.losses)
    for a, b in zip(timed.model.parameters(), real.model.parameters(), strict=True):
        assert torch.equal(a, b)


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
