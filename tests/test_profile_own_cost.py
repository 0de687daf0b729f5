"""The watcher's own cost, measured on probe calls and taken off its times: the arithmetic against
stamps written by hand, and a watched program left as it would run unwatched (a plain loop beside it)."""

from __future__ import annotations

import json

import pytest
import torch

import devicelab
from devicelab.profile.clocks import PerfClock
from devicelab.profile.hook_cost import HookCost, SwitchCost
from devicelab.profile.phase_meter import PhaseMeter, Segment

US = 1e-6


def _clock(stamps_us: list[float]) -> PerfClock:
    clock = PerfClock(len(stamps_us))
    for t in stamps_us:
        clock._stamps[clock.mark()] = t * US
    return clock


def test_each_interval_loses_its_own_cost_and_that_of_the_calls_inside_it():
    # stamps: a root call (0..5) around two layer calls (1..2, 3..4); a backward() call (6..9) around one
    clock = _clock([0, 100, 130, 150, 152, 300, 400, 410, 440, 500])
    cost = HookCost(forward_s=10 * US, forward_no_grad_s=4 * US, backward_s=5 * US,
                    nested_forward_s=25 * US, nested_backward_s=8 * US)  # fmt: skip
    starts = [0, 1, 3]
    got = cost.corrected(
        [(0, 5), (1, 2), (3, 4)], clock, starts, backward=False, hooked=True, input_grad=True
    )
    # the root: 300 less its own 10 and 2 x 25 for the calls inside; a layer of 2 µs cannot go below 0
    assert got == pytest.approx([240 * US, 20 * US, 0.0])
    # the first layer's input needs no gradient: its hooks cost 10 - 4 less, in its parent's time too
    light = cost.corrected([(0, 5)], clock, starts, backward=False, hooked=True, input_grad=True, light=[1])
    assert light == pytest.approx([246 * US])
    no_grad = cost.corrected([(1, 2)], clock, starts, backward=False, hooked=True, input_grad=False)
    assert no_grad == pytest.approx([26 * US])
    call = cost.corrected([(6, 9)], clock, [7], backward=True, hooked=False, input_grad=True)
    assert call == pytest.approx([92 * US])  # a backward() call: no hook of its own, one hooked call inside


class _Fixed:
    def __init__(self, cost: SwitchCost) -> None:
        self._cost = cost

    def cost(self) -> SwitchCost:
        return self._cost

    def step(self) -> None:
        return None


def test_a_switch_costs_its_inner_part_in_its_phase_and_its_outer_part_after_it():
    meter = PhaseMeter(probe=_Fixed(SwitchCost(inner_s=2 * US, outer_s=3 * US)))
    meter.segments = [
        Segment("other", 20 * US, 0),
        Segment("forward", 50 * US, 0, switch=True),
        Segment("other", 10 * US, 0),
        Segment("backward", 1 * US, 0, switch=True),  # shorter than the cost: 0, not negative
        Segment("other", 2 * US, 0),
    ]
    meter.step = 1
    host, _ = meter.per_step()
    assert host["forward"] == pytest.approx([48 * US])
    assert host["backward"] == [0.0]
    assert host["other"] == pytest.approx([(20 + 7 + 0) * US])
    assert meter.switches_per_step() == 2


def _train(steps: int, watch: bool) -> list[float]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.Identity(), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    losses = []

    def loop():
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())

    if not watch:
        loop()
        return [float(v) for v in losses]
    with devicelab.watch(warmup=1, steps=4) as w:
        loop()
    _train.report = w.report()
    return [float(v) for v in losses]


def test_the_probes_leave_the_program_as_it_runs_unwatched_and_say_what_they_took_off():
    steps = 20
    assert _train(steps, watch=True) == _train(steps, watch=False)  # the same losses, step by step
    report = _train.report
    assert [r.name for r in report.layers.layers] == [
        "Sequential.0",
        "Sequential.1",
        "Sequential.2",
        "Sequential.3",
    ]
    assert report.layers.steps == 4  # the probes' calls are no steps
    cost = report.layers.hook_cost
    assert cost is not None and cost.forward_s > 0 and cost.backward_s > 0
    # switches: the model's forward, zero_grad, backward() and the optimizer step (the loss is a function)
    assert report.own_cost_s is not None and report.switches_per_step == 4
    data = json.loads(json.dumps(report.to_dict()))
    assert data["layers"]["hook_cost"]["forward_s"] == cost.forward_s
    assert data["own_cost_s"] == report.own_cost_s
    screen = str(report)
    assert "measured on probe modules through the same hooks" in screen
    assert "measured on empty calls through its wrapper" in screen


def test_once_measured_nothing_of_the_watcher_is_left_in_the_program():
    """After the windows, the first backward() takes the hooks and patches off: the rest of a long script
    runs on torch's own functions (the program's warning filters stay until the block ends)."""
    import warnings

    from torch.optim import optimizer as optim_module

    real_backward = torch.autograd.backward
    hooks_before = (
        len(optim_module._global_optimizer_pre_hooks),
        len(optim_module._global_optimizer_post_hooks),
    )
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 3)
    with devicelab.watch(warmup=0, steps=2, layers=False) as w:
        warnings.filterwarnings("ignore", message="the program's own filter")
        for _ in range(10):
            loss = model(x).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert w.watch.window == "done"
        assert torch.autograd.backward is real_backward
        hooks = len(optim_module._global_optimizer_pre_hooks), len(optim_module._global_optimizer_post_hooks)
        assert hooks == hooks_before
        assert any(f[1] is not None and f[1].pattern == "the program's own filter" for f in warnings.filters)
    assert w.report().breakdown.steps == 2
