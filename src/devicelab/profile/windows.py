"""What the watcher's windows put in place when they open (``devicelab.profile.watch``): the clocks and
records each one fills, and the hooks and patches it adds, each one a ``Patches`` entry of the watch, so
that the window's ``undo()`` (or the block's ``finally``) takes it off again.

Each window may open in several rounds (``Watch.round_steps``): a round adds to the records the
first one made.

- phases: a ``PhaseMeter`` (CUDA events where the device has them, and the switch probe for the host
  clock), a ``Recorder`` of the sync-causing calls over the whole window, and the sync-causing calls'
  patches (``phase_patches.install_syncs``);
- layers: a ``LayerTape`` with its clock (its parameter hooks go with the window), the hook-cost probe on
  the host clock, global full backward hooks, TorchScript modules told to list none, the watcher's
  warning filters in front of the program's, and the device's own sync reports.
"""

from __future__ import annotations

import contextlib
import random
import warnings

import torch
from torch.nn.modules import module as nn_module

from devicelab.profile import hook_cost, phase_patches, sync_audit
from devicelab.profile.clocks import EventClock, clock_for
from devicelab.profile.layer_tape import LayerTape
from devicelab.profile.phase_meter import PhaseMeter
from devicelab.profile.tensors import in_transform
from devicelab.syncs import watch_device_syncs

OUR_WARNINGS = (
    "Using `torch.compile\\(module\\)` when there are global hooks",
    "Dynamo does not know how to trace the builtin `_thread.get_ident",
    "Full backward hook is firing when gradients are computed",
    "For backward hooks to be called, module output should be a Tensor",  # a model returning a dict
)


def _device(watch) -> torch.device:
    return watch.device or torch.device("cpu")


def open_phases(watch) -> None:
    """The first step of the window runs bare; the watch's ``_boundary`` turns the watching on and off.
    A later round of the window adds to the records of the first."""
    if watch.meter is None:
        clock = clock_for(_device(watch), 16 * watch.steps + 16)
        events = clock if isinstance(clock, EventClock) else None
        watch.meter = PhaseMeter(events, hook_cost.SwitchProbe(watch))
        watch.recorder = sync_audit.Recorder(_device(watch).type)
        watch._order = random.Random(0)
    watch._watched = False
    watch._second_of_pair = False  # the first pair: bare, then watched
    stack = contextlib.ExitStack()
    stack.enter_context(sync_audit.watch_calls(watch.recorder))
    watch._syncs.add(stack.close)
    phase_patches.install_syncs(watch, watch._syncs)


def round_target(watch) -> int:
    """The steps a window has at the end of this round: the windows go in rounds of ``round_steps``
    (phases, layers, phases again, ...) up to ``steps`` each, so that a program that ends early (a
    script of a few hundred steps) has every table, each on fewer steps."""
    return min(watch.steps, watch.rounds * watch.round_steps)


def phases_round_done(watch) -> bool:
    target = round_target(watch)
    return watch.meter.step >= target and len(watch.baseline) >= target


def after_round(watch) -> str:
    """The window after a round: phases again until both windows have ``steps`` steps, then done."""
    phases_done = watch.meter.step >= watch.steps and len(watch.baseline) >= watch.steps
    layers_done = not watch.layers_on or (watch.tape is not None and watch.tape.steps >= watch.steps)
    return "done" if phases_done and layers_done else "phases"


def next_watched(watch) -> bool:
    """Steps go in pairs, one bare and one watched, the order within a pair drawn at random (seeded):
    work that comes every even number of steps (an epoch's end and its evaluation every 6 steps) lands
    on either side, where strict turns would put it on the same side every time."""
    watch._second_of_pair = not watch._second_of_pair
    return not watch._watched if watch._second_of_pair else watch._order.random() < 0.5


def _outside_functorch(instead):
    """A maker for ``Patches.replace``: the original, or ``instead(original's result)`` while a
    ``torch.func`` transform runs."""

    def make(original):
        def hooks(module):
            found = original(module)
            return instead(found) if in_transform() else found

        return hooks

    return make


def open_layers(watch) -> None:
    """A later round of the window adds to the tape of the first (its parameter hooks hooked again)."""
    patches = watch._window
    if watch.tape is None:
        clock = clock_for(_device(watch), 64 * watch.steps + 64)
        watch.tape = LayerTape(clock, patches)  # its parameter hooks go with the window's
        watch.tape.probe = hook_cost.Probe(watch) if clock.kind == "perf_counter" else None
        watch.device_syncs = sync_audit.Recorder(_device(watch).type)
    else:
        watch.tape.reopen(patches)
    patches.hook(nn_module.register_module_full_backward_pre_hook(watch._backward_pre))
    patches.hook(nn_module.register_module_full_backward_hook(watch._backward_post))
    # a TorchScript module refuses to list backward hooks (global ones included): it lists none
    patches.replace(torch.jit.RecursiveScriptModule, "_get_backward_pre_hooks", lambda _: lambda s: [])
    patches.replace(torch.jit.RecursiveScriptModule, "_get_backward_hooks", lambda _: lambda s: ([], []))
    # inside torch.func transforms (grad, vmap: per-sample gradients, ensembles) a module's full backward
    # hooks wrap its output in an autograd.Function functorch refuses (the program would raise): none there
    patches.replace(nn_module.Module, "_get_backward_pre_hooks", _outside_functorch(lambda hooks: []))
    patches.replace(nn_module.Module, "_get_backward_hooks", _outside_functorch(lambda hooks: ([], hooks[1])))
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    # torch warns when a module's inputs need no gradient (an embedding's token ids): its backward
    # time then starts at its output's gradient, which the layer table shows as it is; put in front
    # again, before the program's own filters (warnings.simplefilter("error") would raise them)
    for message in OUR_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    stack.enter_context(watch_device_syncs(_device(watch), watch._device_sync))
    patches.add(stack.close)
