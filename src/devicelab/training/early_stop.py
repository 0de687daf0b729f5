"""Early stopping on the validation loss read at log points (Keras' ``EarlyStopping`` with
``restore_best_weights=True``): training stops after ``patience`` log points without a better validation
loss, and the model gets the weights of the best one back."""

from __future__ import annotations

import math

import torch
from torch import nn


class EarlyStopping:
    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self._best_weights: dict[str, torch.Tensor] | None = None
        self._worse = 0  # log points since the best one

    def update(self, val_loss: float, epoch: int, model: nn.Module) -> bool:
        """Take one log point's validation loss (already on the host); True when training should stop."""
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self._worse = val_loss, epoch, 0
            # a device-side copy: no sync
            self._best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self._worse += 1
        if self._worse >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def restore_best(self, model: nn.Module) -> None:
        """Put the best log point's weights back into ``model`` (nothing when none was recorded)."""
        if self._best_weights is not None:
            model.load_state_dict(self._best_weights)

    def to_dict(self) -> dict:
        return {
            "patience_log_points": self.patience,
            "best_epoch": self.best_epoch,
            "best_val_loss": None if math.isinf(self.best_loss) else self.best_loss,
            "stopped_epoch": self.stopped_epoch,
            "worse_log_points": self._worse,
        }

    def tensors(self) -> dict[str, torch.Tensor]:
        """The best point's weights, as a checkpoint keeps them (``early/<name>``), so a resumed run goes on
        comparing with the same best point."""
        return {f"early/{k}": v for k, v in (self._best_weights or {}).items()}

    def load(self, record: dict, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
        """Continue from a checkpoint's ``to_dict()`` and ``tensors()``."""
        best = record.get("best_val_loss")
        self.best_loss = math.inf if best is None else float(best)
        self.best_epoch = record.get("best_epoch")
        self._worse = int(record.get("worse_log_points", 0))
        weights = {k.split("/", 1)[1]: v.to(device) for k, v in tensors.items() if k.startswith("early/")}
        self._best_weights = weights or None
