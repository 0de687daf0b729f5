"""Per-layer times of a watched program, from global module hooks (no model given up front).

While the watcher's layer window is open, every module call reaches ``forward_starts``/``forward_ends``
and every backward through a module ``backward_starts``/``backward_ends``; each is one clock stamp
(``perf_counter``, or a CUDA event on CUDA: nothing waits for the device). The first call of each module
also records its output shape, MACs and activation statistics (device tensors, read once at the end).
``profile()`` turns the stamps into the same ``LayerProfile`` that ``devicelab.profile.layers`` gives.

A layer whose inputs need no gradient (the first one, on the batch) has no backward hook that fires when
its backward ends: it ends at its parameters' last gradient accumulation
(``Tensor.register_post_accumulate_grad_hook``), with the time of the program's own Python hooks on those
parameters (``register_hook``, ``register_post_accumulate_grad_hook``; timed while the window is open)
taken out, so that such work shows between the layers, not in the layer. Hooks on the gradient
accumulator node itself (DDP's reducer: C++, not timed) run inside a layer's interval for every parameter
but the one accumulated last, as they do for every other layer. A layer without parameters that need a
gradient ends when the engine reports the next thing (another module's backward, or ``backward()``'s end).

Modules are named from the top-level modules they belong to (``fc1``; ``MLP.fc1`` when several models
run). Modules with ``inplace=True`` run out of place while the window is open (backward hooks wrap outputs
in a view that must not be modified in place); their flag is put back by ``restore()``.
"""

from __future__ import annotations

import torch
from torch import nn

from devicelab.profile import naming
from devicelab.profile.clocks import Clock
from devicelab.profile.hook_cost import Probe
from devicelab.profile.hooks import Tape, activation_stats
from devicelab.profile.layers import LayerProfile, collect
from devicelab.profile.macs import first_tensor, module_macs
from devicelab.profile.patches import Patches
from devicelab.profile.tensors import in_transform


class LayerTape:
    def __init__(self, clock: Clock, patches: Patches | None = None) -> None:
        self.clock = clock
        self.patches = patches if patches is not None else Patches()  # parameter hooks: the window's
        self.tapes: dict[int, Tape] = {}
        self.roots: list[nn.Module] = []
        self.steps = 0
        self._last_step_end: int | None = None  # the clock stamp that ended the last complete step
        self.backward_calls: list[tuple[int, int]] = []  # stamps around each backward() call
        self._open_call: int | None = None
        self._no_input_grad: set[int] = set()
        self._dangling: tuple[Tape, int] | None = None
        self._inplace: list[nn.Module] = []
        self.probe: Probe | None = None  # probe modules the watcher calls: what the hooks cost
        self._needs: dict[int, frozenset[int]] = {}  # module id -> ids of its parameters needing grad
        self._watchers: dict[int, list[int]] = {}  # parameter id -> ids of the modules waiting on it
        self._pending: dict[int, tuple[Tape, int, set[int]]] = {}  # backward started, gradients to come
        self.accumulated: list[int] = []  # a stamp at each accumulation hook's call: its cost, taken off
        self.program_hooks: list[tuple[int, int]] = []  # the program's own hooks on watched parameters
        self.paths: dict[int, str] | None = None  # the names the program gave the roots (name_roots)
        self._copies_patched = False  # Module.__getstate__ patched in this window (inplace modules)

    def _tape(self, module: nn.Module) -> Tape:
        tape = self.tapes.get(id(module))
        if tape is None:
            tape = self.tapes[id(module)] = Tape(module)
            if getattr(module, "inplace", False) is True:
                module.inplace = False
                self._inplace.append(module)
                self._keep_inplace_in_copies()
        return tape

    def _keep_inplace_in_copies(self) -> None:
        """A module saved or copied while it runs out of place (``torch.save(model)``, ``copy.deepcopy``
        of the best model) keeps the program's ``inplace=True``: ``Module.__getstate__`` says so while
        the window is open."""
        if self._copies_patched:
            return
        self._copies_patched = True
        switched = self._inplace

        def make(original):  # torch's own Module.__getstate__ (a copy of __dict__)
            def getstate(module):
                state = original(module)
                if any(module is m for m in switched):
                    state = {**state, "inplace": True}
                return state

            return getstate

        self.patches.replace(nn.Module, "__getstate__", make)

    def forward_starts(self, module: nn.Module, top: bool, args) -> None:
        if top and all(root is not module for root in self.roots):
            self.roots.append(module)
        if not any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            self._no_input_grad.add(id(module))  # its backward hook fires as its backward starts
            if id(module) not in self._needs and not (top and any(True for _ in module.children())):
                self._watch_parameters(module)  # a model's total is its backward() calls': not needed
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
            if out is not None and out.is_floating_point() and not in_transform():
                with torch.no_grad():
                    tape.stats = activation_stats(out)

    def _watch_parameters(self, module: nn.Module) -> None:
        """Hook the accumulation of each parameter of ``module`` that needs a gradient, once, and time
        the program's own hooks on it (wrapped until the window's patches are undone)."""
        needs = []
        for parameter in module.parameters():
            if not parameter.requires_grad or parameter.grad_fn is not None:
                continue
            if id(parameter) not in self._watchers:
                self._watchers[id(parameter)] = []
                self._time_program_hooks(parameter)
                self.patches.hook(parameter.register_post_accumulate_grad_hook(self.accumulated_hook))
            self._watchers[id(parameter)].append(id(module))
            needs.append(id(parameter))
        self._needs[id(module)] = frozenset(needs)

    def _time_program_hooks(self, parameter: torch.Tensor) -> None:
        """The program's hooks already on ``parameter`` (they run before the watcher's) wrapped in two clock
        stamps, in place in the dictionaries torch calls them from; put back with the window's patches."""
        for hooks in (parameter._backward_hooks, getattr(parameter, "_post_accumulate_grad_hooks", None)):
            if not hooks:
                continue
            saved = dict(hooks)
            for key, hook in saved.items():
                hooks[key] = self._timed(hook)

            def restore(hooks=hooks, saved=saved) -> None:
                for key, hook in saved.items():
                    if key in hooks:
                        hooks[key] = hook

            self.patches.add(restore)

    def _timed(self, hook):
        def timed(*args):
            start = self.clock.mark()
            try:
                return hook(*args)
            finally:
                self.program_hooks.append((start, self.clock.mark()))

        return timed

    def accumulated_hook(self, parameter: torch.Tensor) -> None:
        """A parameter's gradient is accumulated: a layer waiting on its last one ends here."""
        now = self.clock.mark()
        self.accumulated.append(now)
        for key in self._watchers.get(id(parameter), ()):
            pending = self._pending.get(key)
            if pending is not None:
                pending[2].discard(id(parameter))
                if not pending[2]:
                    del self._pending[key]
                    pending[0].backward.append((pending[1], now))

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
                needs = self._needs.get(id(module))
                if needs:  # ends at its parameters' last accumulation
                    self._pending[id(module)] = (tape, tape._open_backward.pop(), set(needs))
                else:
                    self._dangling = (tape, tape._open_backward.pop())
            else:
                tape.backward.append((tape._open_backward.pop(), self.clock.mark()))

    def step_ends(self) -> None:
        self.steps += 1
        if self.probe is not None:  # between the program's steps: the probe's calls are in none
            self.probe.step()
        self._last_step_end = (
            self.clock.mark()
        )  # after the probe: a program that ends mid-step loses that step

    def backward_call_starts(self) -> None:
        self._open_call = self.clock.mark()

    def backward_call_ends(self) -> None:
        self._close_dangling()
        if self._pending:  # a parameter that got no gradient in this call: the layer ends with the call
            end = self.clock.mark()
            for tape, start, _ in self._pending.values():
                tape.backward.append((start, end))
            self._pending.clear()
        if self._open_call is not None:
            self.backward_calls.append((self._open_call, self.clock.mark()))
            self._open_call = None

    def name_roots(self, frame) -> None:
        """Look the roots up in the program's variables, once, while it runs (``devicelab.profile.naming``)."""
        if self.paths is None:
            try:
                self.paths = naming.module_paths(self.roots, naming.program_namespaces(frame))
            except Exception:  # the program's objects are its own (a __dict__ or items that raise): no names
                self.paths = {}

    def reopen(self, patches: Patches) -> None:
        """The window opens again (another round): the parameters are hooked anew on its patches, and
        the steps and calls already taped are kept."""
        self.patches = patches
        self._watchers.clear()
        self._needs.clear()
        self._pending.clear()
        self._dangling = None
        self._open_call = None
        self._copies_patched = False
        for module in self._inplace:
            module.inplace = False
        if self._inplace:
            self._keep_inplace_in_copies()

    def restore(self) -> None:
        for module in self._inplace:  # kept: a later round turns them off again
            module.inplace = True

    def profile(self) -> LayerProfile | None:
        """The layer table of the window's completed steps; None when no module ran in it."""
        if not self.roots or self.steps == 0:
            return None
        self.clock.read()
        if self._last_step_end is not None:  # the program ended inside a step: its calls are left out
            for tape in self.tapes.values():
                tape.forward = [pair for pair in tape.forward if pair[1] <= self._last_step_end]
                tape.backward = [pair for pair in tape.backward if pair[1] <= self._last_step_end]
            self.backward_calls = [pair for pair in self.backward_calls if pair[1] <= self._last_step_end]
        roots, tapes = merge_recreated(self.roots, self.tapes)
        if not roots:
            return None
        cost = self.probe.cost(self.tapes, self.clock) if self.probe is not None else None
        return collect(
            roots, tapes, self.clock, self.steps, self.backward_calls, cost, self._no_input_grad,
            accumulated=self.accumulated, program_hooks=self.program_hooks, paths=self.paths,
        )  # fmt: skip


def _shape_key(module: nn.Module) -> tuple:
    return tuple(
        (name, type(m).__name__, tuple(tuple(p.shape) for p in m.parameters(recurse=False)))
        for name, m in module.named_modules()
    )


def merge_recreated(
    roots: list[nn.Module], tapes: dict[int, Tape]
) -> tuple[list[nn.Module], dict[int, Tape]]:
    """One row for a module made anew each step (``loss = nn.CrossEntropyLoss()(out, y)`` in the loop):
    a top-level module of the same class and shapes as an earlier one whose calls all came after that
    one's last call (so not two models used side by side) is the same layer; its stamps (and those of
    its submodules, by name) go to the first instance's tapes. Top-level modules never called are left
    out."""
    firsts: dict[tuple, tuple[nn.Module, int]] = {}  # shape key -> (first instance, last stamp so far)
    kept: list[nn.Module] = []
    merged = dict(tapes)
    for root in roots:
        key, calls = _shape_key(root), tapes[id(root)].forward if id(root) in tapes else []
        first = firsts.get(key)
        if not calls:
            continue  # called only in a step the program did not finish
        if first is None or min(start for start, _ in calls) < first[1]:
            if first is None:
                firsts[key] = (root, max(end for _, end in calls))
            kept.append(root)
            continue
        into = dict(first[0].named_modules())
        for name, module in root.named_modules():
            tape, target = merged.pop(id(module), None), merged.get(id(into[name]))
            if tape is not None and target is not None:
                target.forward.extend(tape.forward)
                target.backward.extend(tape.backward)
        firsts[key] = (first[0], max(end for _, end in calls))
    return kept, merged
