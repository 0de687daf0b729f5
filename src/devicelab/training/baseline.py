"""A linear model beside every file run: logistic regression (classes) or ridge regression (numbers),
standardised, fitted on the same training rows and the same encoded features as the network, scored on
the same test rows. It answers "would a linear model have done as well?" in every summary.

The noise of the comparison is the paired bootstrap standard error of the difference of the two test
metrics: both models are scored on the same test rows, and those rows are a sample. Resampling them
(with replacement, ``BOOTSTRAP`` times, a fixed seed) and recomputing both metrics on each resample gives
the spread of the difference a new test set of that size would show; for accuracy this is close to the
paired binomial error ``sqrt(var(d) / n)`` of the per-row differences ``d``, and the same procedure
gives one for R², which has no closed form. The baseline is called better only when its lead is more
than ``Z`` such errors (about a 95% one-sided test): a lead inside the noise is no evidence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from devicelab.data import Dataset
from devicelab.i18n import N_
from devicelab.training.units import to_units

MAX_ROWS = 100_000  # training rows the linear model is fitted on, at most (a random subset beyond)
BOOTSTRAP = 1000  # resamples of the test rows (~10 ms for a few thousand rows)
Z = 2.0  # the lead, in bootstrap standard errors, that counts as "better than the noise"
MODELS = {"classification": N_("logistic regression"), "regression": N_("ridge regression")}
METRICS = {"classification": "test_accuracy", "regression": "test_r2"}


@dataclass(frozen=True)
class Baseline:
    """The linear model's test metric beside devicelab's, and whether its lead is beyond the noise."""

    model: str  # "logistic regression" | "ridge regression"
    metric: str  # "test_accuracy" | "test_r2"
    test_metric: float  # the baseline's
    devicelab_metric: float  # the network's, on the same rows (the kept weights)
    noise: float  # bootstrap standard error of the difference baseline - devicelab
    better: bool  # the baseline leads by more than Z * noise
    fit_s: float

    @property
    def lead(self) -> float:
        return self.test_metric - self.devicelab_metric

    def to_dict(self) -> dict:
        return {**asdict(self), "lead": self.lead, "z": Z, "bootstrap": BOOTSTRAP}

    def advice(self) -> str | None:
        """One line when the linear model is better beyond the noise, with what to try; else None."""
        if not self.better:
            return None
        name = self.metric.removeprefix("test_").replace("_", " ")
        return (
            f"a linear model ({self.model}) scores {name} {self.test_metric:.4f} on the same test rows, "
            f"{self.lead:.4f} above devicelab's {self.devicelab_metric:.4f} (noise ±{self.noise:.4f}); try "
            "--optimizer adam --lr 0.003, a smaller --hidden with --weight-decay 1e-3, or, on few rows, "
            "the linear model itself"
        )


def features(dataset: Dataset, x: np.ndarray) -> np.ndarray:
    """The network's encoded features for a linear model: embedded category codes (the last columns)
    one-hot, as a linear model needs them; the rest as they are (the scaler standardises)."""
    codes = len(dataset.embeddings)
    if not codes:
        return x.astype(np.float64)
    blocks = [x[:, : x.shape[1] - codes].astype(np.float64)]
    for i, (slots, _) in enumerate(dataset.embeddings):
        column = x[:, x.shape[1] - codes + i].astype(np.int64)
        blocks.append(np.eye(slots)[np.clip(column, 0, slots - 1)])
    return np.concatenate(blocks, axis=1)


def fit_predict(dataset: Dataset) -> np.ndarray:
    """The linear model fitted on every training row (validation rows included, as the network's
    transforms are) and its predictions for the test rows (class ids, or values in scaled units)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([dataset.x_train, dataset.x_val])
    y = np.concatenate([dataset.y_train, dataset.y_val])
    if len(x) > MAX_ROWS:  # a linear model's answer is settled long before this many rows
        keep = np.random.default_rng(0).choice(len(x), MAX_ROWS, replace=False)
        x, y = x[keep], y[keep]
    x = features(dataset, x)
    if dataset.task == "classification":
        # one class in training: a linear model predicts it (LogisticRegression refuses)
        if len(np.unique(y)) < 2:
            return np.full(len(dataset.x_test), y[0] if len(y) else 0)
        model = LogisticRegression(max_iter=5000)
    else:
        model = Ridge(alpha=1.0)
    pipeline = make_pipeline(StandardScaler(), model)
    pipeline.fit(x, y)
    return pipeline.predict(features(dataset, dataset.x_test))


def compare(dataset: Dataset, ours: np.ndarray, theirs: np.ndarray, fit_s: float = 0.0) -> Baseline:
    """The Baseline record from both models' test predictions (``ours``: devicelab's, class ids or scaled
    values; ``theirs``: the linear model's)."""
    task, y = dataset.task, dataset.y_test
    score = accuracy_of if task == "classification" else r2_of
    if task == "regression":  # R² in the target's units, as the summary's (one inverse for any transform)
        y, ours, theirs = (to_units(dataset, v) for v in (y, ours, theirs))
    noise = bootstrap_std(score, y, ours, theirs)
    mine, base = score(y, ours), score(y, theirs)
    better = bool(math.isfinite(mine) and base - mine > Z * noise)
    return Baseline(MODELS[task], METRICS[task], base, mine, noise, better, fit_s)


def bootstrap_std(score, y: np.ndarray, ours: np.ndarray, theirs: np.ndarray | None = None) -> float:
    """The bootstrap standard error, over resamples of the rows, of ``score(y, ours)`` (or, given
    ``theirs``, of the paired difference ``score(y, theirs) - score(y, ours)``); inf on too few rows."""
    rng = np.random.default_rng(0)
    values = np.empty(BOOTSTRAP)
    for i in range(BOOTSTRAP):  # one resample at a time: memory stays O(rows)
        d = rng.integers(0, len(y), size=len(y))
        mine = score(y[d], ours[d])
        values[i] = mine if theirs is None else score(y[d], theirs[d]) - mine
    values = values[np.isfinite(values)]  # a resample with one target value has no R²
    return float(values.std(ddof=1)) if len(values) > 1 else math.inf


def predict_rows(model, x: np.ndarray, task: str) -> np.ndarray:
    """The network's predictions for rows ``x`` (class ids, or values in scaled units), on the host."""
    import torch

    from devicelab.training.outputs import class_scores, prediction

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = prediction(model(torch.from_numpy(x).to(device)))
        out = class_scores(out).argmax(dim=1) if task == "classification" else out.squeeze(-1)
        host = out.cpu().numpy()  # sync: once, after training, for a comparison or an estimate
    model.train(was_training)
    return host


def run(dataset: Dataset, model) -> Baseline:
    """Fit the linear model and compare it with ``model`` (the network, its kept weights) on the test rows."""
    import time

    started = time.perf_counter()
    theirs = fit_predict(dataset)
    fit_s = time.perf_counter() - started
    return compare(dataset, predict_rows(model, dataset.x_test, dataset.task), theirs, fit_s)


def accuracy_of(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(y == predicted))


def r2_of(y: np.ndarray, predicted: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:
        return math.nan
    return 1.0 - float(np.sum((y - predicted) ** 2)) / total
