"""The layer table: for each leaf module, its output shape, parameters, MACs, forward and backward time
per call and activation statistics, plus the model's totals. Collected through the hooks in
``devicelab.profile.hooks`` in three short passes, so that no measurement pays for another:

1. inspect: one forward (no grad) records shapes, MACs and statistics;
2. forward: ``steps`` forwards timed by forward pre-hooks and forward hooks;
3. backward: ``steps`` forward+backward passes timed by backward pre-hooks and backward hooks.

Every clock stamp and statistic is read once, at the end.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from devicelab.profile import hooks
from devicelab.profile.clocks import clock_for
from devicelab.profile.hook_cost import HookCost
from devicelab.profile.macs import parameter_count


@dataclass(frozen=True)
class ActivationStats:
    mean: float
    std: float
    zero_fraction: float
    dead_fraction: float | None  # share of units zero for every row; None for a 1-d output
    nonfinite_fraction: float


@dataclass(frozen=True)
class LayerRecord:
    name: str
    type: str
    output_shape: tuple[int, ...] | None
    params: int
    macs: int | None  # per call; None when unknown
    calls: float  # calls per step
    forward_s: float | None  # median seconds per call
    backward_s: float | None
    stats: ActivationStats | None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["output_shape"] = list(self.output_shape) if self.output_shape is not None else None
        return d


@dataclass(frozen=True)
class LayerProfile:
    """Leaf layers in call order, and the model as a whole (``total``)."""

    layers: tuple[LayerRecord, ...]
    total: LayerRecord  # the model: its own time, all parameters, the sum of the layers' MACs
    steps: int
    clock: str  # "perf_counter" | "cuda_events"
    hook_cost: HookCost | None = None  # taken off every time above (None: nothing taken off)

    def forward_share(self, layer: LayerRecord) -> float | None:
        """The layer's share of the model's forward time (all its calls in one step)."""
        if layer.forward_s is None or not self.total.forward_s:
            return None
        return layer.forward_s * layer.calls / self.total.forward_s

    def backward_share(self, layer: LayerRecord) -> float | None:
        if layer.backward_s is None or not self.total.backward_s:
            return None
        return layer.backward_s * layer.calls / self.total.backward_s

    def to_dict(self) -> dict:
        return {
            "steps": self.steps,
            "clock": self.clock,
            "layers": [
                {
                    **layer.to_dict(),
                    "forward_share": self.forward_share(layer),
                    "backward_share": self.backward_share(layer),
                }
                for layer in self.layers
            ],
            "total": self.total.to_dict(),
            "hook_cost": asdict(self.hook_cost) if self.hook_cost is not None else None,
        }


def profile_layers(
    model: nn.Module,
    x: torch.Tensor,
    *,
    loss: Callable[[torch.Tensor], torch.Tensor] | None = None,
    steps: int = 10,
    warmup: int = 2,
    backward: bool = True,
) -> LayerProfile:
    """Profile ``model`` on input ``x`` through hooks; ``loss(output)`` gives the scalar to
    differentiate (default: the sum of the output). The model's weights are not changed and its
    gradients are put back as they were."""
    device = x.device
    saved_grads = [(p, p.grad) for p in model.parameters()]
    try:
        for _ in range(warmup):
            _forward_backward(model, x, loss, backward)
        with torch.no_grad(), hooks.attach(model, inspect=True) as inspected:
            model(x)
        n_hooked = len(hooks.hooked_modules(model))
        clock = clock_for(device, capacity=4 * n_hooked * steps + 8)
        with hooks.attach(model, clock=clock, forward=True) as timed_forward:
            for _ in range(steps):
                model(x)
        timed_backward = None
        if backward:
            x_grad = x.detach().requires_grad_(x.is_floating_point())  # so the first layer's hook fires last
            with hooks.attach(model, clock=clock, backward=True) as timed_backward:
                for _ in range(steps):
                    _forward_backward(model, x_grad, loss, True)
        clock.read()
        tapes = {}
        for name, tape in inspected.items():
            tape.forward = timed_forward[name].forward
            tape.backward = timed_backward[name].backward if timed_backward is not None else []
            tapes[id(tape.module)] = tape
        return collect([model], tapes, clock, steps)
    finally:
        for parameter, grad in saved_grads:
            parameter.grad = grad


def _forward_backward(model, x, loss, backward: bool) -> None:
    output = model(x)
    if backward:
        value = loss(output) if loss is not None else output.float().sum()
        model.zero_grad(set_to_none=True)
        value.backward()


class _Timer:
    """Median seconds per call of a tape's stamp pairs, less the hooks' own cost where it was measured
    (``devicelab.profile.hook_cost``)."""

    def __init__(
        self, tapes: dict[int, hooks.Tape], clock, cost: HookCost | None, no_input_grad,
        accumulated: list[int] = (), program_hooks: list[tuple[int, int]] = (),
    ) -> None:  # fmt: skip
        self.clock, self.cost, self.accumulated = clock, cost, accumulated
        self.program_hooks = sorted(program_hooks)
        self.starts = {
            backward: sorted(a for t in tapes.values() for a, _ in (t.backward if backward else t.forward))
            for backward in (False, True)
        }
        self.light = sorted(a for k, t in tapes.items() if k in no_input_grad for a, _ in t.forward)

    def seconds(self, pairs, backward: bool, hooked: bool = True, input_grad: bool = True) -> list[float]:
        if self.cost is None:
            times = [self.clock.seconds(a, b) for a, b in pairs]
        else:
            light = [] if backward else self.light
            times = self.cost.corrected(
                pairs,
                self.clock,
                self.starts[backward],
                backward,
                hooked,
                input_grad,
                light,
                self.accumulated,
            )
        if backward and hooked and self.program_hooks:  # the program's own hooks' time is no layer's
            times = [
                max(0.0, t - self._program_hooks_inside(a, b)) for t, (a, b) in zip(times, pairs, strict=True)
            ]
        return times

    def _program_hooks_inside(self, a: int, b: int) -> float:
        return sum(self.clock.seconds(s, e) for s, e in self.program_hooks if a < s and e < b)

    def median(self, pairs, backward: bool, input_grad: bool = True) -> float | None:
        return statistics.median(self.seconds(pairs, backward, input_grad=input_grad)) if pairs else None


def _read_stats(tapes: dict[int, hooks.Tape]) -> dict[int, ActivationStats]:
    keys = [k for k, tape in tapes.items() if tape.stats is not None]
    # sync: the one read of every layer's activation statistics, after all passes
    values = torch.stack([tapes[k].stats for k in keys]).cpu().tolist() if keys else []
    out = {}
    for key, row in zip(keys, values, strict=True):
        dead = None if math.isnan(row[3]) else row[3]
        out[key] = ActivationStats(row[0], row[1], row[2], dead, row[4])
    return out


def _per_step(seconds: float | None, calls: float) -> float | None:
    return None if seconds is None else seconds * calls


def collect(
    roots: list[nn.Module],
    tapes: dict[int, hooks.Tape],
    clock,
    steps: int,
    backward_calls: list[tuple[int, int]] | None = None,
    cost: HookCost | None = None,
    no_input_grad: set[int] | frozenset[int] = frozenset(),
    accumulated: list[int] = (),
    program_hooks: list[tuple[int, int]] = (),
    paths: dict[int, str] | None = None,
) -> LayerProfile:
    """The layer table from hook tapes (``{id(module): Tape}``) of the ``roots`` (the top-level modules
    called, in order) over ``steps`` steps: a row per leaf, and the roots' total. Used on the passes of
    ``profile_layers`` and on the stamps the watcher's global hooks took while a program ran; ``cost``,
    the hooks' own (measured on empty modules), is taken off every interval (``no_input_grad``: the ids
    of modules called on inputs that need no gradient, whose hooks cost less; ``accumulated``: the stamps
    of the accumulation hook's calls, each ``cost.accumulate_s``; ``program_hooks``: stamp pairs around
    the program's own hooks on the parameters of such modules, taken out of the layers' backward and
    left in the total, between the layers; ``paths``: the names the program gave the roots, for rows the
    class name would not tell apart)."""
    stats = _read_stats(tapes)
    timer = _Timer(tapes, clock, cost, no_input_grad, accumulated, program_hooks)
    empty = hooks.Tape(nn.Identity())

    def record(label: str, module: nn.Module, params: int) -> LayerRecord:
        tape = tapes.get(id(module), empty)
        return LayerRecord(
            name=label,
            type=type(module).__name__,
            output_shape=tape.output_shape,
            params=params,
            macs=tape.macs,
            calls=len(tape.forward) / steps,
            forward_s=timer.median(tape.forward, backward=False, input_grad=id(module) not in no_input_grad),
            backward_s=timer.median(tape.backward, backward=True),
            stats=stats.get(id(module)),
        )

    leaves = hooks.named_leaves(roots, lambda m: bool(tapes.get(id(m), empty).forward), paths)
    if len(roots) == 1 and leaves == [(type(roots[0]).__name__, roots[0])]:  # the model is a single layer
        only = record(type(roots[0]).__name__, roots[0], parameter_count(roots[0], recurse=True))
        return LayerProfile((only,), only, steps, clock.kind, cost)
    layers = tuple(record(name, m, parameter_count(m)) for name, m in leaves)
    macs = [None if layer.macs is None else layer.macs * layer.calls for layer in layers]
    totals = [record("", root, parameter_count(root, recurse=True)) for root in roots]
    per_step = [replace(t, forward_s=_per_step(t.forward_s, t.calls), backward_s=_per_step(t.backward_s, t.calls))
                for t in totals]  # fmt: skip
    if len(per_step) == 1:
        total = replace(per_step[0], name="(total)", calls=1.0)
    else:  # several top-level modules (a model and its loss, two models): added up
        forward = [t.forward_s for t in per_step]
        backward = [t.backward_s for t in per_step if t.backward_s is not None]
        total = LayerRecord(
            "(total)", "", None, sum(t.params for t in per_step), None, 1.0,
            None if None in forward else sum(forward), sum(backward) if backward else None, None,
        )  # fmt: skip
    if backward_calls:  # the backward() calls themselves: a root whose input needs no gradient ends early
        total = replace(
            total, backward_s=sum(timer.seconds(backward_calls, backward=True, hooked=False)) / steps
        )
    total = replace(total, macs=None if None in macs else round(sum(macs)))  # MACs of one step's forward
    # the whole holds at least its layers, so "(between layers)" is never negative: the rows are medians per
    # call and the total a mean (or a median) per step, each with the hooks' cost taken off by estimate, so
    # on a machine whose speed varies the rest can come out a few µs below zero; it is then shown as 0
    total = replace(total, forward_s=_at_least(total.forward_s, [(x.forward_s, x.calls) for x in layers]),
                    backward_s=_at_least(total.backward_s, [(x.backward_s, x.calls) for x in layers]))  # fmt: skip
    return LayerProfile(layers, total, steps, clock.kind, cost)


def _at_least(total: float | None, parts: list[tuple[float | None, float]]) -> float | None:
    known = [t * calls for t, calls in parts if t is not None]
    return None if total is None else max(total, sum(known))
