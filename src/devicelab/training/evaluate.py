"""Test metrics computed on the device as one small tensor, so a log point reads them with the losses
in a single host copy."""

from __future__ import annotations

import torch
from torch import nn

METRIC_NAMES: dict[str, tuple[str, ...]] = {
    "classification": ("test_loss", "test_accuracy"),
    "regression": ("test_loss", "test_rmse", "test_r2"),
}


def evaluate(
    model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str, y_scale: float = 1.0
) -> torch.Tensor:
    """The metrics named by ``METRIC_NAMES[task]``, as a float32 tensor on the model's device (no sync).
    ``y_scale``: the standard deviation a regression target was divided by, so the RMSE is in its units
    (the loss stays in the scaled units the model trains on; R² is the same in both)."""
    was_training = model.training
    model.eval()  # dropout off while measuring
    with torch.inference_mode():
        out = model(x)
        loss = loss_fn(out, y).float()
        if task == "classification":
            accuracy = (out.argmax(dim=1) == y).float().mean()
            metrics = torch.stack([loss, accuracy])
        else:
            residual = out.squeeze(-1) - y
            ss_res = (residual * residual).sum()
            ss_tot = ((y - y.mean()) ** 2).sum()
            metrics = torch.stack([loss, loss.sqrt() * y_scale, 1 - ss_res / ss_tot])
    model.train(was_training)
    return metrics
