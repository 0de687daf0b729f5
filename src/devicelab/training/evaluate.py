"""Test metrics computed on the device as one small tensor, so a log point reads them with the losses
in a single host copy."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from devicelab.i18n import N_
from devicelab.training.outputs import class_scores, prediction

# a run without test rows (devicelab.fit without X_test) has no test metrics, rather than NaN ones; said once
NO_TEST_ROWS = N_("none: no test rows (pass X_test and y_test, or test_size)")

METRIC_NAMES: dict[str, tuple[str, ...]] = {
    "classification": ("test_loss", "test_accuracy"),
    "regression": ("test_loss", "test_rmse", "test_r2"),
}


def evaluate(
    model: nn.Module,
    loss_fn: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task: str,
    y_scale: float = 1.0,
    inverse: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """The metrics named by ``METRIC_NAMES[task]``, as a float32 tensor on the model's device (no sync).
    RMSE and R² are in the target's units (devicelab.training.units): ``y_scale``, the scale an affine
    encoding divided the target by; ``inverse``, a non-affine encoding's inverse. The loss stays the one
    the model trains on (the summary says it in the target's units)."""
    was_training = model.training
    model.eval()  # dropout off while measuring
    with torch.inference_mode():
        out = prediction(model(x))  # (logits, ...) or {"logits": ...}: the prediction
        loss = loss_fn(out, y).float()
        if task == "classification":
            accuracy = (class_scores(out).argmax(dim=1) == y).float().mean()  # one logit: z > 0
            metrics = torch.stack([loss, accuracy])
        else:
            pred = out.squeeze(-1)
            if inverse is not None:  # a non-affine target transform: the metrics after its inverse
                pred, y = inverse(pred), inverse(y)
            residual = pred - y
            ss_res = (residual * residual).sum()
            ss_tot = ((y - y.mean()) ** 2).sum()
            rmse = (ss_res / residual.numel()).sqrt() * y_scale
            metrics = torch.stack([loss, rmse, 1 - ss_res / ss_tot])
    model.train(was_training)
    return metrics
