"""Small data done right: k-fold cross-validation chooses the model and the number of epochs, then one
refit on every training row for that many.

Below ``CV_BELOW`` training rows a validation split is too small to choose on: at the default 15%, a
1,000-row file validates on 150 rows, whose accuracy has a standard error of up to ±0.04 (the issue's
tolerance is 0.05), and a 100-row file on 15 (±0.13): early stopping then picks noise. Five folds
validate on every training row (6.7× the rows, 2.6× less noise) and the refit trains on all of them.
Above it, the split is large enough and one model costs a fifth of five: today's validation split stays.

The ``FOLDS`` models train together as a sweep's models do (devicelab.sweep.layouts: on the CPU the numba
kernel with the folds side by side in SIMD lanes; with embedded categories one batched matmul a layer for
all of them), on the same rows with 0/1 row weights, so that each fold's loss
is exactly its own training rows' mean; every one starts from the weights the refit starts from
(``config.seed``). At each log point the folds' held-out losses and metrics come back in one copy;
training stops when their mean has not improved for the run's early-stopping patience, and the chosen
epoch is the log point with the lowest mean held-out loss.

Model choice: with devicelab's default shape the folds also train a linear model (no hidden layer, the
same loop and loss: logistic or linear regression) and, below ``DECAY_BELOW`` rows, the network with
weight decays ``DECAYS``; the simplest candidate whose held-out loss is within the standard error of
the folds' paired differences from the best one's is kept (the one-standard-error rule, Breiman et al.
1984; simplest: linear, then the strongest decay). On a few dozen rows a linear or a strongly decayed
model is often the better one (the issue's corpus: every file below the tolerance had 21-136 training
rows; stackloss, 16 training rows, went from R² 0.72 to 0.85 with decay 1e-2 chosen this way), and
devicelab should find that itself. The decays of one shape train in one stack with their folds (15
models in the 16 SIMD lanes of numba's kernel that 5 fill; one stack each with batched matmuls, the
layout for embedded categories), so they cost little beside the shape's own.
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
from devicelab.training.units import tensor_inverse

CV_BELOW = 1000  # training rows (validation rows included) below which the epochs are chosen by k-fold CV
FOLDS = 5
DECAY_BELOW = 300  # training rows below which the network is also tried with weight decay
DECAYS = (1e-2, 1e-3)  # the weight decays tried there, strongest (simplest) first


@dataclass(frozen=True)
class Candidate:
    """One model the folds tried: its hidden shape, the epoch its folds chose and the estimate there."""

    hidden: tuple[int, ...]  # () : no hidden layer, a linear model trained by the same loop
    weight_decay: float
    best_epoch: int
    stopped_epoch: int  # the last epoch its folds trained (earlier than max_epochs: stopped early)
    val_loss: float  # the folds' mean held-out loss at best_epoch (what chose it)
    per_fold_loss: tuple[float, ...]
    per_fold: tuple[float, ...]  # the folds' held-out metric at best_epoch

    @property
    def name(self) -> str:
        name = f"hidden {'-'.join(map(str, self.hidden))}" if self.hidden else "linear"
        return f"{name} --weight-decay {self.weight_decay:g}" if self.weight_decay else name


@dataclass(frozen=True)
class CrossValidation:
    """What the folds said: the chosen model and epoch, and the held-out estimate there with its spread."""

    folds: int
    rows: int  # the training rows the folds were cut from (and the refit trains on)
    max_epochs: int
    metric: str  # "val_accuracy" | "val_r2"
    chosen: Candidate
    candidates: tuple[Candidate, ...]
    wall_s: float

    @property
    def best_epoch(self) -> int:
        return self.chosen.best_epoch

    @property
    def mean(self) -> float:
        return float(np.mean(self.chosen.per_fold))

    @property
    def std(self) -> float:
        return float(np.std(self.chosen.per_fold, ddof=1))

    def to_dict(self) -> dict:
        return {
            "folds": self.folds, "rows": self.rows, "max_epochs": self.max_epochs, "metric": self.metric,
            "model": self.chosen.name, "hidden": list(self.chosen.hidden),
            "weight_decay": self.chosen.weight_decay, "best_epoch": self.best_epoch,
            "stopped_epoch": self.chosen.stopped_epoch, "mean": self.mean, "std": self.std,
            "per_fold": list(self.chosen.per_fold), "val_loss": self.chosen.val_loss,
            "candidates": [{**asdict(c), "name": c.name} for c in self.candidates],
            "below_rows": CV_BELOW, "wall_s": self.wall_s,
        }  # fmt: skip


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
    if config.extra.get("model"):
        return "your own model (--model) trains on the split as given: the folds train devicelab's MLPs"
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


def _default(name: str):
    return next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name)


def candidates(config: TrainConfig, rows: int) -> tuple[tuple[tuple[int, ...], float], ...]:
    """The (hidden shape, weight decay) pairs the folds choose between, simplest first: the run's own
    last. With devicelab's default shape, a linear model (no hidden layer) too, and below
    ``DECAY_BELOW`` rows, when no weight decay was asked for, the network with ``DECAYS`` (a shape or
    a decay the user chose is the only one tried)."""
    own = ((config.hidden, config.weight_decay),)
    if config.hidden != _default("hidden"):
        return own
    decays = DECAYS if rows < DECAY_BELOW and config.weight_decay == _default("weight_decay") else ()
    return (((), config.weight_decay), *((config.hidden, d) for d in decays), *own)


def one_standard_error(tried: list[Candidate]) -> Candidate:
    """The simplest candidate (the first) whose held-out loss is within one standard error of the
    best's, the error being that of the folds' paired differences (Breiman et al. 1984): on few rows a
    more complex model is taken only when the folds show it better beyond their noise."""
    best = min(tried, key=lambda c: c.val_loss if np.isfinite(c.val_loss) else np.inf)
    for candidate in tried:
        diff = np.subtract(candidate.per_fold_loss, best.per_fold_loss)
        if not np.isfinite(diff).all():
            continue
        noise = float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
        if diff.mean() <= noise:
            return candidate
    return best


def cross_validate(config: TrainConfig, dataset: Dataset, stop: StopFlag | None = None) -> CrossValidation:
    """Train each candidate's folds together on the CPU (small data: the device for it) and choose the
    model and the epoch by the one-standard-error rule (``one_standard_error``)."""
    started = time.perf_counter()
    rows = len(dataset.x_train) + len(dataset.x_val)
    wanted = candidates(config, rows)
    shapes: dict[tuple[int, ...], list[float]] = {}  # the decays of each shape, trained as one stack
    for hidden, decay in wanted:
        shapes.setdefault(tuple(hidden), []).append(decay)
    found = {
        (c.hidden, c.weight_decay): c
        for hidden, decays in shapes.items()
        for c in _stack(config, dataset, hidden, tuple(decays), stop)
    }
    tried = [found[(tuple(hidden), float(decay))] for hidden, decay in wanted]
    chosen = one_standard_error(tried)
    metric = "val_accuracy" if dataset.task == "classification" else "val_r2"
    return CrossValidation(
        FOLDS, len(dataset.x_train) + len(dataset.x_val), config.epochs, metric, chosen, tuple(tried),
        time.perf_counter() - started,
    )  # fmt: skip


def _stack(config: TrainConfig, dataset: Dataset, hidden, decays: tuple[float, ...], stop) -> list[Candidate]:
    """The candidates of one hidden shape (one weight decay each): all their folds trained together as
    one stack (numba's kernel takes a decay per model; 15 models fill the 16 lanes 5 do), each candidate
    followed until its folds' mean held-out loss stops improving, the stack until every one has stopped."""
    from devicelab.sweep import stack
    from devicelab.sweep.layouts import LAYOUTS, choose_layout

    config = dataclasses.replace(config, hidden=hidden, weight_decay=decays[0])
    x = torch.from_numpy(np.concatenate([dataset.x_train, dataset.x_val]))
    y_np = np.concatenate([dataset.y_train, dataset.y_val])
    y = torch.from_numpy(y_np)
    fold = torch.from_numpy(fold_of(y_np, dataset.task, config.seed))
    k = len(decays)  # model m is fold m % FOLDS of candidate m // FOLDS
    held_out = (fold.unsqueeze(0) == torch.arange(FOLDS).unsqueeze(1)).float().repeat(k, 1)  # (models, rows)
    models = [build_model(config, dataset) for _ in range(FOLDS * k)]  # the refit's initial weights, each
    codes = stack.n_codes(models[0])
    layout, _ = choose_layout("auto", torch.device("cpu"), codes)  # numba's kernel, or batched matmuls
    if layout != "numba" and k > 1:  # batched matmuls take one weight decay a stack: one stack each
        return [c for d in decays for c in _stack(config, dataset, hidden, (d,), stop)]
    generator = torch.Generator().manual_seed(config.seed)
    lrs = np.full(len(models), config.lr)
    trained = LAYOUTS[layout](models, lrs, config, x, y, dataset.task, generator, config.epochs, 1 - held_out)
    if layout == "numba":
        trained.hyper[: len(models), 2] = np.repeat(decays, FOLDS)  # (lr, momentum, weight decay, ...)
    patience, every = early_stop_patience(config), config.log_every
    if not hidden:
        # a linear model trains all its epochs (its best log point kept, as for the others): gradient
        # descent on uncentered (min-max scaled) features fits its directions at very different speeds,
        # so its held-out loss can rise, then fall below its first minimum (Linnerud's 16 training rows:
        # 0.696 at epoch 400, where a network's patience stopped it; 0.617 at 19,300); its stack is cheap
        patience = -(-config.epochs // every) + 1
    inverse = tensor_inverse(dataset.target_scaler)
    epochs, losses, metrics = [], [], []  # per log point: (candidates, folds) arrays
    best, worse, stopped = np.zeros(k, int), np.zeros(k, int), np.zeros(k, int)  # stopped: 0 while going
    epoch = 0
    while epoch < config.epochs:
        count = min(every, config.epochs - epoch)
        trained.run(epoch, count)
        epoch += count
        loss, metric = held_out_scores(trained, x, y, held_out, dataset.task, inverse, codes)
        epochs.append(epoch)
        losses.append(loss.reshape(k, FOLDS))
        metrics.append(metric.reshape(k, FOLDS))
        for c in np.flatnonzero(stopped == 0):  # each candidate's early stopping, as one stack's would be
            # (the first log point is compared with nothing, as EarlyStopping's first is with inf)
            mean, kept = losses[-1][c].mean(), losses[best[c]][c].mean() if len(losses) > 1 else np.inf
            if np.isfinite(mean) and mean < kept:
                best[c], worse[c] = len(losses) - 1, 0
            elif np.isfinite(mean) or not np.isfinite(kept):
                worse[c] += 1
            if not np.isfinite(losses[-1][c]).all() or worse[c] >= patience:
                stopped[c] = epoch
        if (stopped > 0).all() or (stop and stop.requested):
            break
    return [
        Candidate(
            tuple(hidden),
            float(d),
            epochs[best[c]],
            int(stopped[c] or epoch),
            float(np.mean(losses[best[c]][c])),
            tuple(float(v) for v in losses[best[c]][c]),
            tuple(float(v) for v in metrics[best[c]][c]),
        )
        for c, d in enumerate(decays)
    ]


def held_out_scores(trained, x, y, held_out, task: str, inverse, codes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each fold's mean loss and accuracy (or R², in the target's units) on its held-out rows."""
    from devicelab.sweep import stack

    with torch.inference_mode():
        out = stack.forward(trained.params(), x, trained.config.activation, codes)
        n = held_out.sum(dim=1)
        loss = (stack.per_row_loss(out, y, task) * held_out).sum(dim=1) / n
        if task == "classification":
            metric = ((out.argmax(dim=2) == y).float() * held_out).sum(dim=1) / n
        else:
            pred, truth = out.squeeze(-1), y
            if inverse is not None:  # R² in the target's units (an affine scaling leaves it as it is)
                pred, truth = inverse(pred), inverse(truth)
            mean = (truth * held_out).sum(dim=1, keepdim=True) / n.unsqueeze(1)
            ss_tot = (((truth - mean) ** 2) * held_out).sum(dim=1)
            ss_res = (((pred - truth) ** 2) * held_out).sum(dim=1)
            metric = 1 - ss_res / ss_tot
        host = torch.stack([loss, metric]).cpu().numpy()  # sync: the one host read of this log point
    return host[0], host[1]


def refit(config: TrainConfig, cv: CrossValidation) -> tuple[TrainConfig, Dataset]:
    """The refit's config (the chosen model, every training row, ``cv.best_epoch`` epochs, no early
    stopping) and data (the
    file read again without a validation split: what a resumed run or predict reads from that config)."""
    config = dataclasses.replace(
        config, hidden=cv.chosen.hidden, weight_decay=cv.chosen.weight_decay, epochs=cv.best_epoch,
        early_stop=0, val_size=0.0,
    )  # fmt: skip
    return config, load_dataset(config)
