"""torch's optimizer state to and from a fast path's buffers: the one converter both runners use.

A fast path keeps SGD's momentum buffers, or Adam's ``exp_avg`` and ``exp_avg_sq``, as one tensor a
parameter (the fused kernel: CPU views of its flat arrays; the CUDA graph: static device tensors), and
the optimizer's step count on the host. ``write_state`` puts them into ``optimizer.state`` in torch's own
format (so a checkpoint or a later eager step sees what torch would have); ``read_state`` takes them out
again after resume or the NaN stop changed them.
"""

from __future__ import annotations

import torch

from devicelab.fast.codes import SGD


def write_state(
    optimizer: torch.optim.Optimizer | None,
    params: list[torch.Tensor],
    kind: int,
    momentum: float,
    steps: int,
    first: list[torch.Tensor],
    second: list[torch.Tensor],
) -> None:
    """``first``/``second`` (and ``steps``, from the host: no sync) into ``optimizer.state``; nothing
    where torch keeps nothing (plain SGD, SGD without momentum, before the first step)."""
    if optimizer is None or steps == 0 or (kind == SGD and momentum == 0):
        return
    for i, p in enumerate(params):
        state = optimizer.state[p]
        if kind == SGD:
            _put(state, "momentum_buffer", first[i])
            continue
        if isinstance(state.get("step"), torch.Tensor):
            state["step"].fill_(float(steps))  # torch keeps it on the CPU (not capturable)
        else:
            state["step"] = torch.tensor(float(steps), dtype=torch.float32)
        _put(state, "exp_avg", first[i])
        _put(state, "exp_avg_sq", second[i])


def read_state(
    optimizer: torch.optim.Optimizer | None,
    params: list[torch.Tensor],
    first: list[torch.Tensor],
    second: list[torch.Tensor],
) -> int:
    """Zero ``first``/``second``, fill them from ``optimizer.state``, and return its step count (SGD
    keeps none: 1 when it has momentum buffers, "has state" is all it needs)."""
    for t in [*first, *second]:
        t.zero_()  # a zero momentum buffer or exp_avg updates exactly like a missing one
    steps = 0
    if optimizer is None:
        return steps
    for i, p in enumerate(params):
        state = optimizer.state.get(p, {})
        if state.get("momentum_buffer") is not None:
            first[i].copy_(state["momentum_buffer"])
            steps = max(steps, 1)
        if "exp_avg" in state:
            first[i].copy_(state["exp_avg"])
            second[i].copy_(state["exp_avg_sq"])
            # a CPU tensor for torch's Adam (no sync); a device one would sync once, here, at load
            steps = int(state["step"])
    return steps


def _put(state: dict, key: str, values: torch.Tensor) -> None:
    """``state[key] = values`` (a copy), into the existing tensor when it has the same shape and type."""
    old = state.get(key)
    if isinstance(old, torch.Tensor) and old.shape == values.shape and old.dtype == values.dtype:
        old.copy_(values)
    else:
        state[key] = values.detach().clone()
