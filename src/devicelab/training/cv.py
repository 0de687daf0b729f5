"""Small data done right: k-fold cross-validation chooses the number of epochs, then one refit on every
training row for that many.

Below ``CV_BELOW`` training rows a validation split is too small to choose on: at the default 15%, a
1,000-row file validates on 150 rows, whose accuracy has a standard error of up to ±0.04 (the issue's
tolerance is 0.05), and a 100-row file on 15 (±0.13): early stopping then picks noise. Five folds
validate on every training row (6.7× the rows, 2.6× less noise) and the refit trains on all of them.
Above it, the split is large enough and one model costs a fifth of five: today's validation split stays.

The ``FOLDS`` models train together as a sweep's models do (devicelab.sweep.layouts.BmmModels, one
batched matmul a layer for all of them), on the same rows with 0/1 row weights, so that each fold's loss
is exactly its own training rows' mean; every one starts from the weights the refit starts from
(``config.seed``). At each log point the folds' held-out losses and metrics come back in one copy;
training stops when their mean has not improved for the run's early-stopping patience, and the chosen
epoch is the log point with the lowest mean held-out loss.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from devicelab.data import Dataset, load_dataset
from devicelab.training.config import TrainConfig, early_stop_patience
from devicelab.training.interrupt import StopFlag
from devicelab.training.setup import build_model
from devicelab.training.units import tensor_to_units

CV_BELOW = 1000  # training rows (validation rows included) below which the epochs are chosen by k-fold CV
FOLDS = 5


@dataclass(frozen=True)
class CrossValidation:
    """What the folds said: the chosen epoch and the held-out estimate at it, with its spread."""

    folds: int
    rows: int  # the training rows the folds were cut from (and the refit trains on)
    max_epochs: int
    best_epoch: int
    stopped_epoch: int  # the last epoch the folds trained (earlier than max_epochs: stopped early)
    metric: str  # "val_accuracy" | "val_r2"
    mean: float  # of the folds' held-out metric at best_epoch
    std: float  # its spread across the folds (sample standard deviation)
    val_loss: float  # the mean held-out loss at best_epoch (what chose it)
    per_fold: tuple[float, ...]
    wall_s: float

    def to_dict(self) -> dict:
        return {**asdict(self), "per_fold": list(self.per_fold), "below_rows": CV_BELOW}


def reason_not(config: TrainConfig, dataset: Dataset, resumed: bool, distributed: bool) -> str | None:
    """Why this run keeps its validation split (None: cross-validate)."""
    rows = len(dataset.x_train) + len(dataset.x_val)
    if config.data is None or not len(dataset.x_val):
        return "no validation rows (a built-in set, or --val-size 0)"
    if config.val_size is not None:
        return f"--val-size {config.val_size} asks for a validation split"
    if not early_stop_patience(config):
        return "early stopping is off"
    if rows >= CV_BELOW:
        return f"{rows} training rows: a validation split of {len(dataset.x_val)} is enough"
    if resumed or distributed:
        return "a resumed or torchrun run keeps its split"
    if config.dropout > 0:
        return "--dropout: the folds train together without dropout masks"
    return None


def fold_of(y: np.ndarray, task: str, seed: int, folds: int = FOLDS) -> np.ndarray:
    """The fold of each row: a seeded permutation dealt round-robin, class by class for classes
    (stratified: each fold gets its share of every class)."""
    order = np.random.RandomState(seed).permutation(len(y))
    if task == "classification":
        order = order[np.argsort(y[order], kind="stable")]
    fold = np.empty(len(y), dtype=np.int64)
    fold[order] = np.arange(len(y)) % folds
    return fold


def cross_validate(config: TrainConfig, dataset: Dataset, stop: StopFlag | None = None) -> CrossValidation:
    """Train the folds together on the CPU (small data: the device for it) and choose the epoch."""
    from devicelab.sweep.layouts import BmmModels

    started = time.perf_counter()
    x = torch.from_numpy(np.concatenate([dataset.x_train, dataset.x_val]))
    y_np = np.concatenate([dataset.y_train, dataset.y_val])
    y = torch.from_numpy(y_np)
    fold = torch.from_numpy(fold_of(y_np, dataset.task, config.seed))
    held_out = (fold.unsqueeze(0) == torch.arange(FOLDS).unsqueeze(1)).float()  # (folds, rows)
    models = [build_model(config, dataset) for _ in range(FOLDS)]  # the refit's initial weights, each
    generator = torch.Generator().manual_seed(config.seed)
    lrs = np.full(FOLDS, config.lr)
    trained = BmmModels(models, lrs, config, x, y, dataset.task, generator, config.epochs, 1 - held_out)
    patience, every = early_stop_patience(config), config.log_every
    inverse = tensor_to_units(dataset.target_scaler)
    epochs, losses, metrics = [], [], []
    best, worse, epoch = 0, 0, 0
    while epoch < config.epochs:
        count = min(every, config.epochs - epoch)
        trained.run(epoch, count)
        epoch += count
        loss, metric = held_out_scores(trained, x, y, held_out, dataset.task, inverse)
        epochs.append(epoch)
        losses.append(loss)
        metrics.append(metric)
        if np.isfinite(loss.mean()) and loss.mean() < losses[best].mean():
            best, worse = len(losses) - 1, 0
        elif np.isfinite(loss.mean()) or not np.isfinite(losses[best].mean()):
            worse += 1
        if not np.isfinite(loss).all() or worse >= patience or (stop and stop.requested):
            break
    chosen = metrics[best]
    return CrossValidation(
        FOLDS, len(y_np), config.epochs, epochs[best], epoch,
        "val_accuracy" if dataset.task == "classification" else "val_r2",
        float(np.mean(chosen)), float(np.std(chosen, ddof=1)), float(np.mean(losses[best])),
        tuple(float(v) for v in chosen), time.perf_counter() - started,
    )  # fmt: skip


def held_out_scores(trained, x, y, held_out, task: str, inverse) -> tuple[np.ndarray, np.ndarray]:
    """Each fold's mean loss and accuracy (or R², in the target's units) on its held-out rows."""
    from devicelab.sweep import stack

    with torch.inference_mode():
        out = stack.forward(trained.params(), x, trained.config.activation, trained.codes)
        n = held_out.sum(dim=1)
        loss = (stack.per_row_loss(out, y, task) * held_out).sum(dim=1) / n
        if task == "classification":
            metric = ((out.argmax(dim=2) == y).float() * held_out).sum(dim=1) / n
        else:
            pred, truth = out.squeeze(-1), y
            if inverse is not None:  # R² in the target's units (the same for an affine scaling)
                pred, truth = inverse(pred), inverse(truth)
            mean = (truth * held_out).sum(dim=1, keepdim=True) / n.unsqueeze(1)
            ss_tot = (((truth - mean) ** 2) * held_out).sum(dim=1)
            ss_res = (((pred - truth) ** 2) * held_out).sum(dim=1)
            metric = 1 - ss_res / ss_tot
        host = torch.stack([loss, metric]).cpu().numpy()  # sync: the one host read of this log point
    return host[0], host[1]


def refit(config: TrainConfig, cv: CrossValidation) -> tuple[TrainConfig, Dataset]:
    """The refit's config (every training row, ``cv.best_epoch`` epochs, no early stopping) and data (the
    file read again without a validation split: what a resumed run or predict reads from that config)."""
    config = dataclasses.replace(config, epochs=cv.best_epoch, early_stop=0, val_size=0.0)
    return config, load_dataset(config)
