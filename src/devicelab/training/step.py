"""The training step: one function over preallocated device tensors, with no host sync inside.

It never reads a value back to the host, so it never waits for the device. This is the eager step; the
fast paths (``devicelab.fast``) do the same arithmetic their own way: the fused CPU kernel, and the
captured CUDA step (``devicelab.fast.cuda_graph``), which writes its own version of this step with the
epoch index as a device tensor (``index_copy_``), since a captured graph would freeze a Python int.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from devicelab.training.outputs import prediction

Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], None]


def make_step(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer) -> Step:
    """``step(x, y, losses, i)``: one forward/backward/update on ``(x, y)``; the loss goes into
    ``losses[i]`` on the device. Nothing here waits for the device."""

    def step(x: torch.Tensor, y: torch.Tensor, losses: torch.Tensor, i: int) -> None:
        loss = loss_fn(prediction(model(x)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses[i] = loss.detach()  # a device-side copy: no sync

    return step


def make_plain_sgd_step(model: nn.Module, loss_fn: nn.Module, lr: float) -> Step:
    """The same step for plain SGD (no momentum, no weight decay), without the optimizer's per-step
    bookkeeping: ``autograd.grad`` returns the gradients (nothing to zero) and one foreach op applies
    ``p -= lr * grad``, the arithmetic of ``torch.optim.SGD``'s ``p.add_(grad, alpha=-lr)``, so the losses
    are the same bit for bit. It only removes Python overhead, which is what a tiny model's step is made
    of (see benchmarks/seed_vs_train.py)."""
    params = [p for p in model.parameters() if p.requires_grad]

    def step(x: torch.Tensor, y: torch.Tensor, losses: torch.Tensor, i: int) -> None:
        loss = loss_fn(prediction(model(x)), y)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            # a layer the forward did not use has no gradient: left as it is, as torch.optim.SGD leaves it
            if any(g is None for g in grads):
                used = [k for k, g in enumerate(grads) if g is not None]
                torch._foreach_add_([params[k] for k in used], [grads[k] for k in used], alpha=-lr)
            else:
                torch._foreach_add_(params, grads, alpha=-lr)  # what torch.optim.SGD itself calls
        losses[i] = loss.detach()  # a device-side copy: no sync

    return step
