"""Module hooks that watch a model from the outside: when each layer starts and ends, forward and
backward, and what it produced. ``model(x)`` runs them (through ``nn.Module.__call__``); ``model.forward(x)``
would not. Nothing here waits for the device: times are clock stamps and statistics stay device tensors
until the caller reads them, once, at the end.

``attach(model, ...)`` is a context manager: every hook it registers is removed when the block ends,
also when the model raises.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from devicelab.profile.clocks import Clock
from devicelab.profile.macs import first_tensor, module_macs


@dataclass
class Tape:
    """What the hooks wrote down for one module (mutable while hooks run, read afterwards)."""

    module: nn.Module
    forward: list[tuple[int, int]] = field(default_factory=list)  # clock stamps (start, end) per call
    backward: list[tuple[int, int]] = field(default_factory=list)
    output_shape: tuple[int, ...] | None = None
    macs: int | None = None
    stats: torch.Tensor | None = None  # see activation_stats; still on the device
    _open_forward: list[int] = field(default_factory=list)
    _open_backward: list[int] = field(default_factory=list)


def hooked_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model itself (name ``""``, for the totals) and every leaf module (the layer rows).

    Containers in between (an ``nn.Sequential`` block inside the model) are not hooked: their time is
    their leaves' time plus the Python between them, which shows up as the gap in the model's total.
    """
    leaves = [(name, m) for name, m in model.named_modules() if name and not any(True for _ in m.children())]
    return [("", model), *leaves]


def named_leaves(
    roots: list[nn.Module],
    called: Callable[[nn.Module], bool] = lambda m: True,
    paths: Mapping[int, str] | None = None,
):
    """The layer rows of each root: modules that were ``called`` and none of whose descendants were (a
    leaf, or a module such as ``MultiheadAttention`` that uses its children's weights without calling
    them); a root that is itself a leaf by its class name. A parametrization (``weight_norm``'s, called
    when its layer reads the weight) is no row: its layer is. Names as ``named_modules`` gives them,
    prefixed with the root's class name when several roots have children or the name is a number. Where
    the class name would not tell roots apart (several roots with children, two roots of one class), a
    root is called by its ``paths`` entry (``{id(root): "encoder"}``, ``devicelab.profile.naming``)."""
    with_children = [r for r in roots if any(True for _ in r.children())]
    several = len(with_children) > 1
    paths = paths or {}
    classes = defaultdict(int)
    for root in roots:
        classes[type(root).__name__] += 1
    seen: set[int] = set()
    counts: defaultdict[str, int] = defaultdict(int)
    out = []
    for root in roots:
        for name, module in root.named_modules() if root in with_children else [("", root)]:
            if id(module) in seen or not called(module) or "parametrizations" in name.split("."):
                continue  # a parametrization (weight_norm) is part of its layer's forward, not a layer
            if any(
                called(m)
                for n, m in module.named_modules()
                if m is not module and "parametrizations" not in n
            ):
                continue
            seen.add(id(module))
            root_label = type(root).__name__
            if several or classes[root_label] > 1:
                root_label = paths.get(id(root), root_label)
            label = name or root_label
            if name and several:
                label = f"{root_label}.{name}"
            elif name and name.split(".")[0].isdigit():
                label = f"{type(root).__name__}.{name}"
            counts[label] += 1
            out.append((label if counts[label] == 1 else f"{label}#{counts[label]}", module))
    return out


STAT_NAMES = ("mean", "std", "zero_fraction", "dead_fraction", "nonfinite_fraction")


def activation_stats(output: torch.Tensor) -> torch.Tensor:
    """``STAT_NAMES`` of one activation as a 5-element device tensor (computed on the device, no sync).

    mean and std (population) are over the finite values; ``zero_fraction`` is the share of exact
    zeros; ``dead_fraction`` the share of units (dimension 1) that are zero for every row of the batch —
    dead ReLUs — (NaN for a 1-d output); ``nonfinite_fraction`` the share of NaN and inf.
    """
    x = output.detach().float()
    finite = torch.isfinite(x)
    kept = torch.where(finite, x, torch.full_like(x, float("nan")))
    mean = torch.nanmean(kept)
    std = torch.nanmean((kept - mean) ** 2).sqrt()
    zero = x == 0
    if x.dim() >= 2:
        per_unit = zero.transpose(0, 1).reshape(x.shape[1], -1)
        dead = per_unit.all(dim=1).float().mean()
    else:
        dead = torch.full((), float("nan"), device=x.device)
    return torch.stack([mean, std, zero.float().mean(), dead, (~finite).float().mean()])


def _forward_start(tape: Tape, clock: Clock):
    def hook(module, args):
        tape._open_forward.append(clock.mark())

    return hook


def _forward_end(tape: Tape, clock: Clock):
    def hook(module, args, output):
        end = clock.mark()
        tape.forward.append((tape._open_forward.pop(), end))

    return hook


def _backward_start(tape: Tape, clock: Clock):
    def hook(module, grad_output):
        tape._open_backward.append(clock.mark())

    return hook


def _backward_end(tape: Tape, clock: Clock):
    def hook(module, grad_input, grad_output):
        end = clock.mark()
        tape.backward.append((tape._open_backward.pop(), end))

    return hook


def _inspect(tape: Tape):
    def hook(module, args, output):
        out, inp = first_tensor(output), first_tensor(args)
        tape.output_shape = tuple(out.shape) if out is not None else None
        tape.macs = module_macs(module, inp, out)
        if out is not None and out.is_floating_point():
            tape.stats = activation_stats(out)

    return hook


@contextmanager
def attach(
    model: nn.Module,
    *,
    clock: Clock | None = None,
    forward: bool = False,
    backward: bool = False,
    inspect: bool = False,
) -> Iterator[dict[str, Tape]]:
    """Hook the model and its leaves for the block; yields ``{name: Tape}`` (``""`` is the model).

    ``forward``/``backward`` time each call with ``clock``; ``inspect`` records output shape, MACs and
    activation statistics. All hooks are removed on exit, whatever happens inside the block. During a
    ``backward`` block, modules with ``inplace=True`` run out of place (same result), because backward
    hooks wrap outputs in a view that must not be modified in place; their flag is restored afterwards.
    """
    if (forward or backward) and clock is None:
        raise ValueError("timing hooks need a clock")
    tapes: dict[str, Tape] = {}
    handles = []
    restore: list[tuple[nn.Module, str, object]] = []
    try:
        for name, module in hooked_modules(model):
            tape = tapes[name] = Tape(module)
            if forward:
                handles.append(module.register_forward_pre_hook(_forward_start(tape, clock)))
                handles.append(module.register_forward_hook(_forward_end(tape, clock)))
            if backward:
                restore.append((module, "_is_full_backward_hook", module._is_full_backward_hook))
                if getattr(module, "inplace", False) is True:
                    restore.append((module, "inplace", True))
                    module.inplace = False
                handles.append(module.register_full_backward_pre_hook(_backward_start(tape, clock)))
                handles.append(module.register_full_backward_hook(_backward_end(tape, clock)))
            if inspect:
                handles.append(module.register_forward_hook(_inspect(tape)))
        yield tapes
    finally:
        for handle in handles:
            handle.remove()
        for module, attribute, value in reversed(restore):
            setattr(module, attribute, value)
