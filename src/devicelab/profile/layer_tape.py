"""Per-layer times of a watched program, from global module hooks (no model given up front).

While the watcher's layer window is open, every module call reaches ``forward_starts``/``forward_ends``
and every backward through a module ``backward_starts``/``backward_ends``; each is one clock stamp
(``perf_counter``, or a CUDA event on CUDA: nothing waits for the device). The first call of each module
also records its output shape, MACs and activation statistics (device tensors, read once at the end).
``profile()`` turns the stamps into the same ``LayerProfile`` that ``devicelab.profile.layers`` gives.

Modules are named from the top-level modules they belong to (``fc1``; ``MLP.fc1`` when several models
run). Modules with ``inplace=True`` run out of place while the window is open (backward hooks wrap outputs
in a view that must not be modified in place); their flag is put back by ``restore()``.
"""

from __future__ import annotations

import torch
from torch import nn

from devicelab.profile.clocks import Clock
from devicelab.profile.hook_cost import Probe
from devicelab.profile.hooks import Tape, activation_stats
from devicelab.profile.layers import LayerProfile, collect
from devicelab.profile.macs import first_tensor, module_macs


class LayerTape:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tapes: dict[int, Tape] = {}
        self.roots: list[nn.Module] = []
        self.steps = 0
        self.backward_calls: list[tuple[int, int]] = []  # stamps around each backward() call
        self._open_call: int | None = None
        self._no_input_grad: set[int] = set()
        self._dangling: tuple[Tape, int] | None = None
        self._inplace: list[nn.Module] = []
        self.probe: Probe | None = None  # probe modules the watcher calls: what the hooks cost

    def _tape(self, module: nn.Module) -> Tape:
        tape = self.tapes.get(id(module))
        if tape is None:
            tape = self.tapes[id(module)] = Tape(module)
            if getattr(module, "inplace", False) is True:
                module.inplace = False
                self._inplace.append(module)
        return tape

    def forward_starts(self, module: nn.Module, top: bool, args) -> None:
        if top and all(root is not module for root in self.roots):
            self.roots.append(module)
        if not any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            self._no_input_grad.add(id(module))  # its backward hook fires as its backward starts
        self._tape(module)._open_forward.append(self.clock.mark())

    def forward_ends(self, module: nn.Module, args, output) -> None:
        tape = self.tapes.get(id(module))
        if tape is None or not tape._open_forward:
            return
        tape.forward.append((tape._open_forward.pop(), self.clock.mark()))
        if tape.output_shape is None:
            out, inp = first_tensor(output), first_tensor(args)
            tape.output_shape = tuple(out.shape) if out is not None else ()
            compiled = (
                type(module).__name__ == "OptimizedModule"
            )  # its arithmetic is its inner module's: unknown
            tape.macs = None if compiled else module_macs(module, inp, out)
            if out is not None and out.is_floating_point():
                with torch.no_grad():
                    tape.stats = activation_stats(out)

    def _close_dangling(self) -> None:
        """A module whose inputs needed no gradient (the first layer, on the batch) ends its backward
        when the engine reports the next thing: another module's backward, or ``backward()``'s end."""
        if self._dangling is not None:
            tape, start = self._dangling
            tape.backward.append((start, self.clock.mark()))
            self._dangling = None

    def backward_starts(self, module: nn.Module) -> None:
        self._close_dangling()
        tape = self.tapes.get(id(module))
        if tape is not None:
            tape._open_backward.append(self.clock.mark())

    def backward_ends(self, module: nn.Module) -> None:
        tape = self.tapes.get(id(module))
        if tape is not None and tape._open_backward:
            if id(module) in self._no_input_grad:
                self._dangling = (tape, tape._open_backward.pop())
            else:
                tape.backward.append((tape._open_backward.pop(), self.clock.mark()))

    def step_ends(self) -> None:
        self.steps += 1
        if self.probe is not None:  # between the program's steps: the probe's calls are in none
            self.probe.step()

    def backward_call_starts(self) -> None:
        self._open_call = self.clock.mark()

    def backward_call_ends(self) -> None:
        self._close_dangling()
        if self._open_call is not None:
            self.backward_calls.append((self._open_call, self.clock.mark()))
            self._open_call = None

    def restore(self) -> None:
        for module in self._inplace:
            module.inplace = True
        self._inplace.clear()

    def profile(self) -> LayerProfile | None:
        """The layer table of the window's completed steps; None when no module ran in it."""
        if not self.roots or self.steps == 0:
            return None
        self.clock.read()
        cost = self.probe.cost(self.tapes, self.clock) if self.probe is not None else None
        return collect(
            self.roots, self.tapes, self.clock, self.steps, self.backward_calls, cost, self._no_input_grad
        )
