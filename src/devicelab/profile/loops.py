"""The lesson's training loop, which the sync audit runs beside devicelab's own (``devicelab.train``).

``lesson_loop`` is the lesson's loop as written (day 34): ``losses.append(loss.item())`` every epoch and a
progress line with ``loss.item()`` every 100 epochs; ``log`` receives the line the lesson prints. Its syncs
are there on purpose: they are what the audit is shown to find.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


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
