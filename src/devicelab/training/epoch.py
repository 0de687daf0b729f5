"""One epoch over device-resident data: one full-batch step, or mini-batches shuffled on the device.

The shuffle is a ``torch.randperm`` on the device and each batch an ``index_select`` of the device
tensors, so no batch is ever copied from the host and nothing waits for the device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from devicelab.training.step import Step


def make_epoch(
    step: Step,
    x: torch.Tensor,
    y: torch.Tensor,
    losses: torch.Tensor,
    batch_size: int | None,
    generator: torch.Generator,
) -> Callable[[int], None]:
    """``epoch(i)`` trains one epoch and writes its mean training loss into ``losses[i]``."""
    n = x.shape[0]
    if batch_size is None or batch_size >= n:

        def full_batch(i: int) -> None:
            step(x, y, losses, i)

        return full_batch

    starts = range(0, n, batch_size)
    batch_losses = torch.zeros(len(starts), device=x.device)
    # each batch's share of the epoch mean (the last batch may be smaller)
    weights = torch.tensor([min(batch_size, n - s) / n for s in starts], device=x.device)

    def mini_batches(i: int) -> None:
        order = torch.randperm(n, device=x.device, generator=generator)
        for j, start in enumerate(starts):
            rows = order[start : start + batch_size]
            step(x.index_select(0, rows), y.index_select(0, rows), batch_losses, j)
        losses[i] = torch.dot(batch_losses, weights)  # stays on the device

    return mini_batches
