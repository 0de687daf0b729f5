"""What a training run produced: losses, metrics at log points, the model, and how it ran."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from devicelab.data import Dataset, RoleTable
from devicelab.training.config import TrainConfig
from devicelab.training.device_choice import DeviceChoice
from devicelab.training.evaluate import NO_TEST_ROWS

# A validation loss this many times the training loss, and at least GAP_MIN above it, is worth a warning.
GAP_RATIO, GAP_MIN = 1.5, 0.05

STATUSES = ("completed", "interrupted", "diverged", "early_stopped")


@dataclass(frozen=True, repr=False)  # the fields' repr is tens of KB (arrays, state): __repr__ below
class RunResult:
    config: TrainConfig
    dataset: Dataset
    model: nn.Module  # the final weights (after a divergence: the last good ones)
    status: str  # one of STATUSES
    epochs_done: int
    losses: np.ndarray  # the training loss of every epoch done, float32
    # one row per log point: epoch, train_loss, (val_loss), test metrics (none without test rows), elapsed_s
    metrics: tuple[dict, ...]
    choice: DeviceChoice
    wall_s: float  # this session's training loop, clock read after the last host sync
    session_epochs: int  # epochs run in this session (a resumed run counts only the new ones)
    host_syncs: int  # device-to-host reads inside the training loop
    diverged_epoch: int | None  # the first epoch whose loss was NaN or infinite
    optimizer_state: dict
    rng_state: dict[str, torch.Tensor]
    resumed_from: str | None = None
    previous_wall_s: float = 0.0
    path: str = "eager"  # the runner that trained: "eager" or a fast path's name (devicelab.fast)
    path_reason: str = ""  # why that runner (and, when a fast path could not apply, why not)
    setup_s: float = 0.0  # the fast path's compile or capture time and self-check, not counted in wall_s
    self_check: dict | None = None  # guard.SelfCheck.to_dict() of the fast path (None: no fast path ran)
    fallback: str = ""  # why a fast path that failed mid-run was left for the eager step ("": it did not)
    early_stopping: dict | None = None  # EarlyStopping.to_dict(): best epoch, its validation loss, ...
    checkpoints: dict | None = None  # Autosave.to_dict(): how many were written and what they cost
    # more state for --resume: early stopping's best weights (early/...), and the last epoch's weights when
    # early stopping put the best ones into the model (resume/...)
    extra_state: dict[str, torch.Tensor] = field(default_factory=dict)
    data_mode: str = "device"  # "device" (rows copied there once) or "streamed" (from host memory)
    data_reason: str = ""  # why that mode (the rows' size against the device's free memory)
    world_size: int = 1  # processes that trained it together (torchrun + DDP)
    folder: Path | None = None  # the run folder: kept as it trained (training.session), or fit(runs_dir=)
    tensorboard: str | None = None  # its TensorBoard event files, when asked for
    # a file run's linear model on the same split (devicelab.training.baseline.Baseline.to_dict())
    baseline: dict | None = None
    # small data: the k-fold cross-validation that chose the epochs (devicelab.training.cv.CrossValidation)
    cross_validation: dict | None = None
    # a split run: the kept weights' validation metric and its bootstrap spread (training/estimate.py)
    validation: dict | None = None

    @property
    def final(self) -> dict:
        """The row of the weights the run kept: the best validation point's when early stopping restored
        it, else the last log point's (train loss and test metrics)."""
        best = (self.early_stopping or {}).get("best_epoch")
        if best is not None and self.status in ("completed", "early_stopped"):
            return next(dict(row) for row in self.metrics if row["epoch"] == best)
        return dict(self.metrics[-1]) if self.metrics else {}

    @property
    def roles(self) -> RoleTable:
        """What was done to each column (printed: the role table, as a file run shows it)."""
        return RoleTable(self.dataset.roles)

    def __repr__(self) -> str:
        """One screen: how the run went, on what data, its kept metrics, and where the rest is."""
        d = self.dataset
        kind = f"{len(d.classes)} classes" if d.classes is not None else "regression"
        final = ", ".join(f"{k} {v:.4g}" for k, v in self.final.items() if k not in ("epoch", "elapsed_s"))
        threads = f"{self.choice.threads} thread{'s' if self.choice.threads != 1 else ''}"
        early = (self.early_stopping or {}).get("best_epoch")
        lines = [
            f"RunResult({self.status}: {self.epochs_done} of {self.config.epochs} epochs on {self.choice.device}"
            f" ({threads}), {self.path} step, {self.wall_s:.2f} s)",
            f"  data: {d.name} ({len(d.x_train)} train, {len(d.x_val)} validation, {len(d.x_test)} test rows; "
            f"{d.n_features} inputs; {kind})",
            f"  kept (epoch {self.final.get('epoch', '-')}{', best validation' if early else ''}): {final}",
            *([f"  test metrics: {NO_TEST_ROWS}"] if not len(d.x_test) else []),
            f"  .roles ({len(d.roles)} columns), .metrics ({len(self.metrics)} log points), .losses "
            f"({len(self.losses)} epochs), .model, .plot(), .save()",
        ]
        return "\n".join(lines)

    @property
    def us_per_epoch(self) -> float:
        return self.wall_s / self.session_epochs * 1e6 if self.session_epochs else float("nan")

    @property
    def resumable(self) -> bool:
        # an early-stopped run ended on purpose (resuming would stop at once); a diverged one cannot go on
        return self.status not in ("diverged", "early_stopped")

    def overfitting(self) -> str | None:
        """One line when the validation loss is far above the training loss at the kept point (the best
        validation point with early stopping, else the last), with what to try; None otherwise."""
        rows = [r for r in self.metrics if "val_loss" in r]
        if not rows:
            return None
        best = (self.early_stopping or {}).get("best_epoch")
        row = next((r for r in rows if r["epoch"] == best), rows[-1])
        train, val = row["train_loss"], row["val_loss"]
        if not (val > GAP_RATIO * train and val - train > GAP_MIN):
            return None
        return (
            f"validation loss {val:.4g} vs training loss {train:.4g} at epoch {row['epoch']}: the model fits "
            "the training rows much better than new ones (overfitting); try --weight-decay 1e-4, a smaller "
            "--hidden, or fewer --epochs"
        )

    def baseline_advice(self) -> str | None:
        """One line when the linear baseline beat the network by more than the noise, with what to try."""
        from devicelab.training.baseline import Baseline

        if not self.baseline:
            return None
        fields = {k: v for k, v in self.baseline.items() if k in Baseline.__dataclass_fields__}
        return Baseline(**fields).advice()

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
