"""The two training loops the sync audit compares, over the same model, data and optimizer.

``lesson_loop`` is the lesson's loop as written (day 34): ``losses.append(loss.item())`` every epoch and a
progress line with ``loss.item()`` every 100 epochs; ``log`` receives the line the lesson prints.
``devicelab_loop`` is devicelab's: the sync-free step (``make_step``, or the ``step`` given: the one
``devicelab train`` would run) writes each loss into a device buffer, and the host reads the buffer only at
log points and once at the end.

Both contain their syncs on purpose: they are what the audit is shown to find.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from devicelab.train.step import make_step

Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], None]


def lesson_loop(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    num_epochs: int,
    log: Callable[[str], None] = lambda line: None,
) -> list[float]:
    losses = []
    for epoch in range(num_epochs):
        outputs = model(X_train)
        loss = criterion(outputs, y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # sync: the lesson reads every epoch's loss
        if (epoch + 1) % 100 == 0:
            # sync: the lesson's progress line reads the loss again
            log(f"Epoch [{epoch + 1}/{num_epochs}], Loss: {loss.item():.4f}")
    return losses


def devicelab_loop(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    num_epochs: int,
    log_every: int = 100,
    log: Callable[[str], None] = lambda line: None,
    step: Step | None = None,
) -> list[float]:
    step = step or make_step(model, criterion, optimizer)
    losses = torch.zeros(num_epochs, device=X_train.device)
    for epoch in range(num_epochs):
        step(X_train, y_train, losses, epoch)
        if (epoch + 1) % log_every == 0:
            log(f"Epoch [{epoch + 1}/{num_epochs}], Loss: {losses[epoch].item():.4f}")  # sync: log point
    return losses.tolist()  # sync: the one read of all losses, after the loop
