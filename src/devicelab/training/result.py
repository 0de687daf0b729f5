"""What a training run produced: losses, metrics at log points, the model, and how it ran."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from devicelab.data import Dataset
from devicelab.training.config import TrainConfig
from devicelab.training.device_choice import DeviceChoice

STATUSES = ("completed", "interrupted", "diverged")


@dataclass(frozen=True)
class RunResult:
    config: TrainConfig
    dataset: Dataset
    model: nn.Module  # the final weights (after a divergence: the last good ones)
    status: str  # one of STATUSES
    epochs_done: int
    losses: np.ndarray  # the training loss of every epoch done, float32
    metrics: tuple[dict, ...]  # one row per log point: epoch, train_loss, test metrics, elapsed_s
    choice: DeviceChoice
    wall_s: float  # this session's training loop, clock read after the last host sync
    session_epochs: int  # epochs run in this session (a resumed run counts only the new ones)
    host_syncs: int  # device-to-host reads inside the training loop
    diverged_epoch: int | None  # the first epoch whose loss was NaN or infinite
    optimizer_state: dict
    rng_state: dict[str, torch.Tensor]
    resumed_from: str | None = None
    previous_wall_s: float = 0.0

    @property
    def final(self) -> dict:
        """The last log point's row (train loss and test metrics)."""
        return dict(self.metrics[-1]) if self.metrics else {}

    @property
    def us_per_epoch(self) -> float:
        return self.wall_s / self.session_epochs * 1e6 if self.session_epochs else float("nan")

    @property
    def resumable(self) -> bool:
        return self.status != "diverged"

    def plot(self):
        """A matplotlib Figure of the training and test curves (as saved in ``loss.png``)."""
        from devicelab.report.plots import loss_figure

        return loss_figure(self.losses, self.metrics, title=self.title())

    def title(self) -> str:
        status = "" if self.status == "completed" else f" [{self.status}]"
        return f"{self.dataset.name}: {self.epochs_done} epochs on {self.choice.device}{status}"

    def save(self, runs_dir: str | Path | None = None, name: str | None = None) -> Path:
        """Write the run folder (never overwriting one) and return its path."""
        from devicelab.training.run_folder import write_run

        return write_run(self, runs_dir or self.config.runs_dir, name or self.config.name)
