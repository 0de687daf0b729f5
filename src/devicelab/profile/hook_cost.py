"""What the watcher's own instrumentation adds to the times it takes, measured in the same run, to be
taken off.

A layer's time is the interval between two clock stamps taken inside hooks, so it also holds part of the
hooks themselves and the module-call machinery they bring with them (a full backward hook wraps the
layer's inputs and outputs in autograd nodes). For a large layer that is noise; for a ``ReLU`` or a
``Flatten`` it is most of the interval. ``Probe`` calls probe modules through the same hooks:

- ``One`` (``x * 1.0``): its forward interval less the same operator timed bare beside it is the hooks'
  cost inside a call's own interval (``forward_s``; ``forward_no_grad_s`` on an input that needs no
  gradient, which the backward hooks leave alone): the hooks' code, and what they add to the first
  operator on the input (which they wrap); ``Empty`` (returns its input): its backward interval
  (``backward_s``);
- ``ACCUMULATED`` scalar parameters, their gradients accumulated in one ``backward()`` with the layer
  tape's accumulation hook on each and without (the same number of other parameters), for what one call
  of that hook costs (``accumulate_s``);
- ``Around(Empty)`` (calls ``Empty``): its interval less ``Empty``'s own is what one hooked call adds to
  the interval of the call around it (``nested_forward_s``, ``nested_backward_s``): a model's total holds
  that once for every layer call inside it.

A phase of a watched step is the time between two switches of the phase meter, made by the watcher's
wrappers; ``SwitchProbe`` times the same wrapper on empty calls (``SwitchCost``).

Both probes run in bursts of ``BURST`` calls at the first steps of their window, ``CALLS`` in all, beside
the program's own calls (so one slow moment of the machine does not decide it); medians after the first
``SKIPPED`` (those also record shapes and statistics). The host clock only: on a device clock the hooks'
host time overlaps the device's queued work, so there is nothing fixed to take away.
"""

from __future__ import annotations

import statistics
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from devicelab.profile.tensors import in_transform  # no probe calls inside one: backward() raises there

CALLS, SKIPPED, BURST = 40, 5, 4
ACCUMULATED = 8  # parameters a probe backward() accumulates, with the hook on each and without


class Empty(nn.Module):
    def forward(self, x):
        return x


class Around(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = Empty()

    def forward(self, x):
        return self.inner(x)


@dataclass(frozen=True)
class HookCost:
    forward_s: float  # inside a hooked call's own interval
    forward_no_grad_s: float  # the same for a call none of whose inputs needs a gradient (the first layer)
    backward_s: float
    nested_forward_s: float  # what a hooked call adds to the interval of the call around it
    nested_backward_s: float
    accumulate_s: float = 0.0  # one call of the hook on a parameter's gradient accumulation

    def corrected(
        self,
        pairs,
        clock,
        starts: list[int],
        backward: bool,
        hooked: bool,
        input_grad: bool,
        light: list[int] = (),
        accumulated: list[int] = (),
    ):
        """Each interval of ``pairs`` less the hooks' cost: its own (``hooked``: the pairs are a hooked
        call's, not a ``backward()`` call's; ``input_grad``: some input of the call needs a gradient), and
        that of every hooked call that started inside it (``starts``: the sorted start stamps of every
        call of the window; ``light``: those of calls on inputs that need no gradient, which cost the
        difference less; ``accumulated``: the stamps of the accumulation hook's calls, in backward)."""
        each_accumulation = self.accumulate_s if backward else 0.0
        if backward:
            own, nested, lighter = self.backward_s, self.nested_backward_s, 0.0
        else:
            own, nested = self.forward_s if input_grad else self.forward_no_grad_s, self.nested_forward_s
            lighter = self.forward_s - self.forward_no_grad_s
        own = own if hooked else 0.0
        return [
            max(
                0.0,
                clock.seconds(a, b)
                - own
                - nested * _inside(starts, a, b)
                + lighter * _inside(light, a, b)
                - each_accumulation * _inside(accumulated, a, b),
            )
            for a, b in pairs
        ]


def _inside(starts: list[int], a: int, b: int) -> int:
    return bisect_left(starts, b) - bisect_right(starts, a)


class One(nn.Module):
    """One operator on its input: every layer runs at least one, and the hooks make that first one dearer
    (its input is the hooks' wrapped view)."""

    def forward(self, x):
        return x * 1.0


@contextmanager
def outside_the_program(watch) -> Iterator[None]:
    """Calls of the watcher's own (probes) while its hooks are on: inside a call of no module of the
    program (no root, no step), with ``backward()`` let straight through, gradients on (an inference
    program may be under ``no_grad``)."""
    watch._fstack.append((None, True))
    watch._backward_depth += 1
    try:
        with torch.enable_grad():
            yield
    finally:
        watch._backward_depth -= 1
        watch._fstack.pop()


class Probe:
    """The probe modules, called through the watcher's hooks a few times at each of the first steps of
    the layer window, and the cost read from their tapes once the window is over."""

    def __init__(self, watch) -> None:
        self.watch = watch
        self.outer, self.one, self.one_no_grad = Around(), One(), One()
        self.x = torch.zeros((), device=watch.device or "cpu", requires_grad=True)
        self.bare: dict[bool, list[float]] = {True: [], False: []}  # x * 1.0 outside any module
        self.parameters = {hooked: [torch.zeros((), requires_grad=True) for _ in range(ACCUMULATED)]
                           for hooked in (True, False)}  # fmt: skip
        for parameter in self.parameters[True]:
            watch.tape.patches.hook(parameter.register_post_accumulate_grad_hook(watch.tape.accumulated_hook))
        self.accumulations: dict[bool, list[float]] = {True: [], False: []}  # backward() of their sum
        self.calls = 0
        self._cost: HookCost | None = None

    def step(self) -> None:
        """A burst of ``BURST`` calls at each of the window's first steps, to ``SKIPPED + CALLS``."""
        if self.calls < SKIPPED + CALLS and not in_transform():
            with outside_the_program(self.watch):
                self._calls(BURST + (SKIPPED if self.calls == 0 else 0))

    def _calls(self, calls: int) -> None:
        held = self.x * 1.0  # a tensor with a gradient function, as a layer's input has
        for _ in range(calls):
            self.outer(self.x).backward()
            self.one(self.x).backward()
            self.one_no_grad(self.x.detach())
            for grad, x in ((True, held), (False, held.detach())):
                start = time.perf_counter()
                x * 1.0
                self.bare[grad].append(time.perf_counter() - start)
            for hooked, parameters in self.parameters.items():
                for parameter in parameters:
                    parameter.grad = None  # as the program's zero_grad leaves them: the gradient is taken
                total = torch.stack(parameters).sum()
                start = time.perf_counter()
                total.backward()
                self.accumulations[hooked].append(time.perf_counter() - start)
            self.calls += 1

    def cost(self, tapes: dict, clock) -> HookCost | None:
        """The hooks' cost from the probes' tapes (``{id(module): Tape}``), which are taken out of
        ``tapes``; None when the window ended before any call after the first ones."""
        if self._cost is None and self.calls > SKIPPED:
            modules = (self.outer, self.outer.inner, self.one, self.one_no_grad)
            around, empty, one, one_no_grad = (tapes.pop(id(m)) for m in modules)

            def median(values) -> float:
                return statistics.median(values[SKIPPED:])

            def interval(pairs) -> float:
                return median([clock.seconds(s, e) for s, e in pairs])

            inner_f, inner_b = interval(empty.forward), interval(empty.backward)
            self._cost = HookCost(
                forward_s=max(0.0, interval(one.forward) - median(self.bare[True])),
                forward_no_grad_s=max(0.0, interval(one_no_grad.forward) - median(self.bare[False])),
                backward_s=inner_b,
                nested_forward_s=max(0.0, interval(around.forward) - inner_f),
                nested_backward_s=max(0.0, interval(around.backward) - inner_b),
                accumulate_s=max(0.0, median(self.accumulations[True]) - median(self.accumulations[False]))
                / ACCUMULATED,
            )
        return self._cost


@dataclass(frozen=True)
class SwitchCost:
    """What one phase switch of the phase window costs (a wrapped call: a ``push`` and a ``pop``)."""

    inner_s: float  # in the phase's own segment
    outer_s: float  # in the segment around it (taken off the segment after the switch)


def _nothing() -> None:
    return None


class SwitchProbe:
    """Empty calls through the watcher's phase wrapper, on a scratch meter, in a burst at each of the
    phase window's first watched steps' ends: the wrapped call less the same call bare is one switch's
    cost; its own segment's time is the part inside the phase."""

    def __init__(self, watch) -> None:
        self.watch = watch
        self.bare: list[float] = []
        self.wrapped: list[float] = []
        self.inner: list[float] = []
        self._cost: SwitchCost | None = None

    def step(self) -> None:
        if len(self.bare) >= SKIPPED + CALLS or in_transform():
            return
        from devicelab.profile.phase_meter import PhaseMeter
        from devicelab.profile.phase_patches import _phase as phase_wrapper

        watch = self.watch
        saved, watch.meter, watch._watched = (watch.meter, watch._watched), PhaseMeter(), True
        try:
            wrapped = phase_wrapper(watch, "data")(_nothing)
            for _ in range(BURST + (SKIPPED if not self.bare else 0)):
                start = time.perf_counter()
                _nothing()
                middle = time.perf_counter()
                wrapped()
                self.wrapped.append(time.perf_counter() - middle)
                self.bare.append(middle - start)
            self.inner += [s.host_s for s in watch.meter.segments if s.phase == "data"]
        finally:
            watch.meter, watch._watched = saved

    def cost(self) -> SwitchCost | None:
        if self._cost is None and len(self.bare) > SKIPPED:
            each = statistics.median(self.wrapped[SKIPPED:]) - statistics.median(self.bare[SKIPPED:])
            inner = min(statistics.median(self.inner[SKIPPED:]), max(0.0, each))
            self._cost = SwitchCost(inner, max(0.0, each - inner))
        return self._cost
