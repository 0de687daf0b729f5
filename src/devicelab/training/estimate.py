"""The validation estimate of a run that chose its epochs on a validation split, with its spread.

A run of 1,000 training rows or more keeps today's validation split (training/cv.py says why); the
estimate of how good the kept weights are, before the test rows are looked at, is their metric on the
validation rows. Those rows are a sample, so the estimate comes with the bootstrap standard error over
them (the same resampling the baseline's noise uses: ``baseline.bootstrap_std``), as a cross-validated
run's comes with the spread across its folds. The estimate is optimistic by the choice itself (the
epoch was chosen on these rows); on a few hundred validation rows and one choice that bias is small
beside the spread.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from devicelab.data import Dataset
from devicelab.training.baseline import BOOTSTRAP, accuracy_of, bootstrap_std, predict_rows, r2_of
from devicelab.training.units import to_units


@dataclass(frozen=True)
class ValidationEstimate:
    """The kept weights' metric on the validation rows and its bootstrap standard error."""

    metric: str  # "val_accuracy" | "val_r2"
    value: float
    std: float  # bootstrap standard error over the validation rows
    rows: int
    epoch: int  # the epoch whose weights were kept

    def to_dict(self) -> dict:
        return {**asdict(self), "bootstrap": BOOTSTRAP}


def estimate(dataset: Dataset, model, epoch: int) -> ValidationEstimate:
    """The metric of ``model`` (the kept weights) on ``dataset``'s validation rows, with its spread."""
    task, y = dataset.task, dataset.y_val
    ours = predict_rows(model, dataset.x_val, task)
    score = accuracy_of if task == "classification" else r2_of
    if task == "regression":  # R² in the target's units, as the summary's
        y, ours = to_units(dataset, y), to_units(dataset, ours)
    metric = "val_accuracy" if task == "classification" else "val_r2"
    return ValidationEstimate(metric, score(y, ours), bootstrap_std(score, y, ours), len(y), int(epoch))


def wanted(dataset: Dataset) -> bool:
    """A run with validation rows of a table (not images: the baseline's rule too)."""
    return dataset.x_val is not None and len(dataset.x_val) > 0 and np.ndim(dataset.x_val) == 2
