"""What the watcher patches while its phase window is open, besides the global hooks:

- ``DataLoader`` batches (``_BaseDataLoaderIter.__next__``): the "data" phase;
- host→device copies made outside a forward (``Tensor.to``, ``Tensor.cuda``): "data" too; a
  ``non_blocking`` copy from pageable host memory to a GPU is a sync, recorded as one;
- ``Optimizer.zero_grad`` and ``Module.zero_grad``: "optimizer"; without an optimizer, ``torch.no_grad``
  blocks outside forwards (the weights updated by hand);
- ``torch.cuda.synchronize``, with the host's wait, at the user's line (the sync-causing tensor calls
  are watched over the whole window, bare steps too: ``devicelab.profile.watch``).

Each patch goes into the window's ``Patches``, undone when the window closes.
"""

from __future__ import annotations

import sys
import time

import torch
from torch.utils.data import dataloader

from devicelab.profile import sync_audit
from devicelab.profile.patches import Patches

PAGEABLE_COPY = "pageable non_blocking copy"
SYNCHRONIZE = "synchronize"


def _phase(watch, name: str, only_outside_forward: bool = False):
    """A wrapper maker: the call is phase ``name`` in a watched step (with ``only_outside_forward``, only
    when it is made from the user's loop, not inside a forward or another phase)."""

    def make(original):
        def watched(*args, **kwargs):
            meter = watch.meter
            if (
                torch.compiler.is_compiling()  # traced into a compiled region: nothing of the watcher's
                or not watch._watched
                or not watch._ours()
                or (only_outside_forward and (watch._fstack or meter.stack[-1] != "other"))
            ):
                return original(*args, **kwargs)
            meter.push(name)
            try:
                return original(*args, **kwargs)
            finally:
                meter.pop()

        return watched

    return make


def _top_level_call(watch):
    """``Module.__call__`` in a watched training step: a top-level call is "forward" ("eval" under
    ``no_grad``); calls inside it go straight through (so torch keeps its fast path for them, as it would
    not with global forward hooks firing for every module)."""

    def make(original):
        def call(module, *args, **kwargs):
            if torch.compiler.is_compiling() or watch._fstack or not watch._ours():  # traced: as in the hooks
                return original(module, *args, **kwargs)
            watch._fstack.append((module, True))
            watch.meter.forward_starts(
                "forward" if torch.is_grad_enabled() else "eval", watch.mode == "backward"
            )
            try:
                output = original(module, *args, **kwargs)
            finally:
                watch._fstack.pop()
                watch.meter.pop(id(module))
            watch.top_level_ends(module, output)
            return output

        return call

    return make


def _by_hand_update(watch):
    """``torch.no_grad`` blocks outside forwards in a step whose weights are updated by hand (no optimizer:
    ``with torch.no_grad(): w -= lr * w.grad``) are "optimizer", also where no module is called at all."""

    def make_enter(original):
        def enter(self):
            meter = watch.meter
            self._devicelab_update = (
                not torch.compiler.is_compiling()
                and watch._watched
                and watch._ours()
                and not watch._fstack
                and meter.stack[-1] == "other"
            )
            if self._devicelab_update:
                meter.push("optimizer")
            return original(self)

        return enter

    def make_exit(original):
        def exit_(self, *exc):
            try:
                return original(self, *exc)
            finally:
                if getattr(self, "_devicelab_update", False) and watch.meter.stack[-1] == "optimizer":
                    self._devicelab_update = False
                    watch.meter.pop()

        return exit_

    return make_enter, make_exit


def install(watch, patches: Patches) -> None:
    """For a watched step (in training: inference steps are found by the global forward hooks)."""
    if watch.mode == "backward":
        enter, exit_ = _by_hand_update(watch)
        patches.replace(torch.no_grad, "__enter__", enter)
        patches.replace(torch.no_grad, "__exit__", exit_)
    if watch.mode != "forward":
        patches.replace(torch.nn.Module, "__call__", _top_level_call(watch))
    patches.replace(dataloader._BaseDataLoaderIter, "__next__", _phase(watch, "data"))
    patches.replace(torch.optim.Optimizer, "zero_grad", _phase(watch, "optimizer", only_outside_forward=True))
    patches.replace(torch.nn.Module, "zero_grad", _phase(watch, "optimizer", only_outside_forward=True))


def install_syncs(watch, patches: Patches) -> None:
    """For the whole phase window: the sync-causing calls that are not tensor methods, and copies (a
    "data" phase in watched steps, a sync when ``non_blocking`` from pageable memory)."""
    recorder = watch.recorder
    for name in ("to", "cuda"):
        patches.replace(torch.Tensor, name, _copy(_phase(watch, "data", only_outside_forward=True), recorder))
    if torch.cuda.is_available():
        patches.replace(torch.cuda, "synchronize", _synchronize(recorder))


def _copy(as_data, recorder: sync_audit.Recorder):
    """``Tensor.to``/``.cuda`` as "data"; a pageable ``non_blocking`` copy to a GPU recorded as a sync."""

    def make(original):
        timed = as_data(original)

        def watched(self, *args, **kwargs):
            if torch.compiler.is_compiling():
                return original(self, *args, **kwargs)
            if not (kwargs.get("non_blocking") and self.device.type == "cpu" and not self.is_pinned()):
                return timed(self, *args, **kwargs)
            start = time.perf_counter()
            out = timed(self, *args, **kwargs)
            if out.device.type != "cpu" and recorder.enabled and recorder.depth == 0:
                recorder.record(PAGEABLE_COPY, sys._getframe(1), time.perf_counter() - start)
            return out

        return watched

    return make


def _synchronize(recorder: sync_audit.Recorder):
    def make(original):
        def watched(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if recorder.enabled and recorder.depth == 0:
                    recorder.record(SYNCHRONIZE, sys._getframe(1), time.perf_counter() - start)

        return watched

    return make
