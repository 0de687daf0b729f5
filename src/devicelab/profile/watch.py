"""Watch any PyTorch code from outside, through torch's global hooks: ``with Watch() as w: ...``.

Steps are counted from the outside: each ``optimizer.step()`` ends one (global optimizer step hooks;
closures such as LBFGS's run inside it); without an optimizer each ``backward()`` ends one (weights
updated by hand); without ``backward()`` each call of the first top-level module starts one (inference).
A program that first evaluates and then trains is re-counted from the first step of the higher kind.

Steps then pass through windows after ``warmup`` steps:

1. phases, ``2 × steps`` steps in pairs of a bare and a watched one, in random order within a pair (so that
   both see the same machine, and periodic work falls on both): in a
   bare step only its boundary and the sync-causing calls (``Recorder``: one Python call a sync, so that
   a sync every 100 steps is seen whichever steps are watched) are watched, and its time is the
   uninstrumented step time; in a watched one also top-level forwards, ``backward()``, optimizer steps
   and ``zero_grad``, ``DataLoader`` batches and host→device copies (``PhaseMeter``);
2. layers, ``steps`` steps: every module's forward and backward (``LayerTape``), and on CUDA the device's
   own sync reports;

(the windows go in rounds of ``ROUND`` steps, phases, layers, phases, ...; their set-up and rounds are in ``devicelab.profile.windows``), then all is removed at the program's next ``backward()`` (where no hook list of torch's is being walked)
and it runs at full speed (with ``stop_after``, it is stopped instead). Every change to torch is one
``Patches``, undone in one ``finally`` when the block ends, however it ends.
"""

from __future__ import annotations

import sys
import threading
import time

import torch
from torch.nn.modules import module as nn_module
from torch.optim import optimizer as optim_module

from devicelab.profile import phase_patches, sync_audit, windows
from devicelab.profile.layer_tape import LayerTape
from devicelab.profile.macs import first_tensor
from devicelab.profile.patches import Patches
from devicelab.profile.phase_meter import PhaseMeter
from devicelab.profile.tensors import block_note, device_of, loss_module

RANK = {"forward": 0, "backward": 1, "optimizer": 2}  # what ends a step, weakest first
WINDOWS = ("warmup", "phases", "layers", "done")
ROUND = 25  # steps of a window's round: a program of 10 + 3 × 25 steps has every table


class StopProgram(BaseException):
    """Raised from a hook to end the watched program once it is measured (``stop_after``); a
    BaseException so that the program's own ``except Exception`` does not swallow it."""


class Watch:
    def __init__(self, *, warmup: int = 10, steps: int = 50, layers: bool = True, stop_after: bool = False):
        if steps < 1 or warmup < 0:
            raise ValueError("steps must be at least 1 and warmup at least 0")
        self.warmup, self.steps, self.layers_on, self.stop_after = warmup, steps, layers, stop_after
        self.round_steps = min(steps, ROUND)
        self.rounds = 0  # rounds of the phase window opened
        self.mode: str | None = None  # a RANK key: what ends a step
        self.window = "warmup"
        self.count = 0  # steps ended in this mode
        self.baseline: list[float] = []
        self.meter: PhaseMeter | None = None
        self.tape: LayerTape | None = None
        self.recorder: sync_audit.Recorder | None = None
        self.device_syncs: sync_audit.Recorder | None = None
        self.device: torch.device | None = None
        self.notes: list[str] = []
        self.optimizers: list[str] = []
        self._always = Patches()  # off at the first backward() once measured (_watched_backward)
        self._quiet = Patches()  # warning filters: off only as the block ends (the program's are in them)
        self._window = Patches()
        self._syncs = Patches()  # the sync-causing calls, over the whole phase window
        self._forward_hooks: Patches | None = None
        self._primary: object | None = None  # the optimizer (or module) whose step ends a step
        self._others: dict[int, int] = {}  # other optimizers' steps since the primary's last one
        self._fstack: list = []
        self._out_fns: dict[int, tuple[object, torch.nn.Module]] = {}
        self._compiled = 0
        self._watched = False  # in the phase window: this step is watched (else it runs bare)
        self._backward_depth = 0
        self._t = time.perf_counter()
        self._thread = threading.get_ident()

    # -- the block ----------------------------------------------------------------------------------
    def __enter__(self) -> Watch:
        # the step hooks run as they are where a compiled function (a whole training step) calls them:
        # dynamo breaks its graph there rather than trace the watcher's state into guards
        eager = torch.compiler.disable
        self._always.hook(optim_module.register_optimizer_step_pre_hook(eager(self._optimizer_starts)))
        self._always.hook(optim_module.register_optimizer_step_post_hook(eager(self._optimizer_ends)))
        for name in ("backward", "grad"):
            self._always.replace(torch.autograd, name, self._watched_backward)
        self._quiet.ignore_warnings(
            windows.OUR_WARNINGS
        )  # torch's words on the watcher's hooks, not the program's
        self._set_forward_hooks()
        return self

    def __exit__(self, *exc) -> bool:
        try:
            if self.meter is not None and self.meter.events is not None:
                self.meter.events.read()
            if self.tape is not None:
                self.tape.clock.read()
        finally:
            self._close_window()
            if self._forward_hooks is not None:
                self._forward_hooks.undo()
                self._forward_hooks = None
            self._always.undo()
            self._quiet.undo()
        return False

    @property
    def _idle(self) -> bool:
        """Measured, and nothing can restart the count (only training after inference would)."""
        return self.window == "done" and self.mode != "forward"

    def _ours(self) -> bool:
        """The call comes from the thread the program trains in: the one that made the watch, or the
        first other one to call a module or an optimizer before it did (training in a worker thread)."""
        ident = threading.get_ident()
        if ident != self._thread and self.mode is None and not self._fstack:
            self._thread = ident
        return ident == self._thread

    # -- step boundaries ----------------------------------------------------------------------------
    def _promote(self, source: str, primary: object) -> None:
        if self.mode is None or RANK[source] > RANK[self.mode]:
            if self.window != "warmup":
                self._close_window()
                self._discard()
                self._watched = False
            self.mode, self._primary, self.window, self.count = source, primary, "warmup", 0
            self._set_forward_hooks()

    def _discard(self) -> None:
        self.baseline, self.meter, self.tape, self.recorder, self.device_syncs = [], None, None, None, None
        self.rounds = 0

    def _boundary(self) -> None:
        now = time.perf_counter()
        self.count += 1
        window = self.window
        if window == "warmup" and self.count >= self.warmup:
            self._open("phases")
        elif window == "phases":
            self.recorder.step += 1
            if self._watched:  # a watched step ends; the next one runs bare
                self.meter.step_ends()
                self._out_fns.clear()
                self._window.undo()
            else:
                self.baseline.append(now - self._t)
            if windows.phases_round_done(self):
                self._watched = False
                self._open("layers" if self.layers_on else windows.after_round(self))
            else:
                self._watched = windows.next_watched(self)
                if self._watched:
                    phase_patches.install(self, self._window)
                self._set_forward_hooks()
                if self._watched:
                    self.meter.resume()  # last: installing is no part of the step
        elif window == "layers":
            self.tape.step_ends()
            self.device_syncs.step = self.tape.steps
            if self.tape.steps >= windows.round_target(self):
                self._open(windows.after_round(self))
        self._t = time.perf_counter()

    def _open(self, window: str) -> None:
        self._close_window()
        self.window = window
        if window == "phases":
            self.rounds += 1
            windows.open_phases(self)
        elif window == "layers":
            windows.open_layers(self)
        self._set_forward_hooks()
        if window == "done" and self.stop_after:
            if threading.current_thread() is not threading.main_thread():
                self.notes.append(
                    "--stop-after: the program trains in a thread of its own, so it ran to its end"
                )
                return  # raised here it would end that thread only, and the program would go on without it
            raise StopProgram  # control flow out of the user's program: the only way to end it from a hook

    def _close_window(self) -> None:
        if self.tape is not None:
            self.tape.name_roots(sys._getframe())  # while the program runs: its variables name its modules
        try:
            self._window.undo()
        finally:
            self._syncs.undo()
        if self.tape is not None:
            self.tape.restore()

    def _set_forward_hooks(self) -> None:
        """Global forward hooks while they are needed: to find top-level calls before training is seen
        (inference steps), and in the phase and layer windows."""
        needed = self.mode in (None, "forward") or self.window == "layers"
        if needed and self._forward_hooks is None:
            self._forward_hooks = Patches()
            self._forward_hooks.hook(nn_module.register_module_forward_pre_hook(self._forward_starts))
            self._forward_hooks.hook(
                nn_module.register_module_forward_hook(self._forward_ends, always_call=True)
            )
        elif not needed and self._forward_hooks is not None:
            self._forward_hooks.undo()
            self._forward_hooks = None
            self._fstack.clear()

    # -- windows ------------------------------------------------------------------------------------
    def _device_sync(self, frame) -> None:
        if self.device_syncs is not None and (self.recorder is None or self.recorder.depth == 0):
            self.device_syncs.record(sync_audit.CUDA_KIND, frame)

    # -- hooks --------------------------------------------------------------------------------------
    def _forward_starts(self, module, args):
        if torch.compiler.is_compiling() or not self._ours():  # see _forward_ends
            return None
        if self._compiled or (self._fstack and self.window != "layers"):
            self._fstack.append((module, False))  # inside a top-level call: only the layer window times it
            return None
        top = not self._fstack
        if type(module).__name__ == "OptimizedModule":
            self._compiled += 1
        note = block_note(module)
        if note is not None and note not in self.notes:
            self.notes.append(note)
        if top:
            if self.device is None:
                self.device = device_of(module, args)
            if self.mode is None:
                self._promote("forward", module)
            if self.mode == "forward" and module is self._primary:
                self._boundary()
        training = torch.is_grad_enabled() or self.mode == "forward"
        self._fstack.append((module, training))
        if top and self._watched:
            self.meter.forward_starts("forward" if training else "eval", self.mode == "backward")
        if self.window == "layers" and training:
            self.tape.forward_starts(module, top, args)
        return None

    def top_level_ends(self, module, output) -> None:
        """A top-level forward of a watched step ended: its output's graph node, to find the loss."""
        out = first_tensor(output)
        if out is not None and out.grad_fn is not None:
            self._out_fns[id(out.grad_fn)] = (out.grad_fn, module)

    def _forward_ends(self, module, args, output):
        # while dynamo traces a torch.compile'd module's inner calls, the module hooks are nothing in its
        # graph (no graph break, no guard on the watcher): the compiled module is timed as one block
        if torch.compiler.is_compiling() or not self._ours():
            return
        if not self._fstack or self._fstack[-1][0] is not module:
            return
        _, training = self._fstack.pop()
        top = not self._fstack
        if not top and self.window != "layers":
            return
        if type(module).__name__ == "OptimizedModule":
            self._compiled = max(0, self._compiled - 1)
        if self._compiled:
            return
        if top and self._watched:
            self.meter.pop(id(module))
            self.top_level_ends(module, output)
        if self.window == "layers" and training:
            self.tape.forward_ends(module, args, output)

    def _in_backward(self) -> bool:
        """A module's backward hook is the program's: on its thread, or on an autograd engine thread while
        the program's ``backward()`` runs (the engine runs a CUDA device's nodes on a thread of its own)."""
        return self.tape is not None and (self._backward_depth > 0 or self._ours())

    def _backward_pre(self, module, grad_output):
        if self._in_backward():
            self.tape.backward_starts(module)

    def _backward_post(self, module, grad_input, grad_output):
        if self._in_backward():
            self.tape.backward_ends(module)

    def _watched_backward(self, original):
        def backward(tensors, *args, **kwargs):
            if (
                torch.compiler.is_compiling()
            ):  # torch.compile tracing a backward (AOTAutograd): not the program's
                return original(tensors, *args, **kwargs)
            if self._idle and self._ours():  # measured, and nothing can restart the count: all off
                self._always.undo()
            if self._idle or self._backward_depth or not self._ours():  # full speed once measured
                return original(tensors, *args, **kwargs)
            self._backward_starts(tensors)
            self._backward_depth += 1
            try:
                return original(tensors, *args, **kwargs)
            finally:
                self._backward_depth -= 1
                self._backward_ends()

        return torch.compiler.disable(backward)  # as the step hooks (__enter__)

    def _backward_starts(self, tensors) -> None:
        loss = first_tensor(tensors)
        if self.device is None and loss is not None:
            self.device = loss.device
        self._promote("backward", None)
        if self._watched:
            self.meter.backward_starts(lambda outputs=self._out_fns: loss_module(loss, outputs))
            self.meter.push("backward")
        elif self.window == "layers":
            self.tape.backward_call_starts()

    def _backward_ends(self) -> None:
        if self._watched:
            self.meter.pop()
        elif self.window == "layers":
            self.tape.backward_call_ends()
        if self.mode == "backward":
            self._boundary()

    def _optimizer_starts(self, optimizer, args, kwargs):
        if self._idle or not self._ours():  # full speed once measured
            return
        name = type(optimizer).__name__
        if name not in self.optimizers:
            self.optimizers.append(name)
        self._promote("optimizer", optimizer)
        if self._watched:
            self.meter.push("optimizer")

    def _optimizer_ends(self, optimizer, args, kwargs):
        if self._idle or self.mode != "optimizer" or not self._ours():
            return
        if self._watched:
            self.meter.pop()
        if optimizer is not self._primary:
            # another optimizer stepping twice with none of the first's steps between (fine-tuning with a
            # new optimizer after pre-training) ends the steps from now on; GAN-style pairs alternate
            self._others[id(optimizer)] = self._others.get(id(optimizer), 0) + 1
            if self._others[id(optimizer)] < 2:
                return
            self._primary = optimizer
        self._others.clear()
        self._boundary()
