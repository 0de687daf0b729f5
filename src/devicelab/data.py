"""Loading, splitting and scaling tabular data into arrays ready for the device.

The seed path is the lesson's exactly: ``train_test_split(test_size=0.2, random_state=42)`` on the raw
rows, a scaler fitted on the training rows only, float32 features and int64 class labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from devicelab.errors import UserError
from devicelab.training.config import TrainConfig

if TYPE_CHECKING:  # torch is imported where tensors are made, so bad CSVs fail fast
    import torch

BUILTIN: dict[str, str] = {
    # name -> task; loaders come from sklearn.datasets (shipped with scikit-learn, no download)
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "digits": "classification",
    "diabetes": "regression",
}


@dataclass(frozen=True)
class Scaler:
    """Per-feature affine map ``(x - shift) / scale`` fitted on the training rows; saved with a run."""

    kind: str  # "minmax" | "standard" | "none"
    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, kind: str, x: np.ndarray) -> Scaler:
        x = np.asarray(x, dtype=np.float64)
        if kind == "minmax":
            shift, span = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        elif kind == "standard":
            shift, span = x.mean(axis=0), x.std(axis=0)
        elif kind == "none":
            shift, span = np.zeros(x.shape[1]), np.ones(x.shape[1])
        else:
            raise UserError(f"unknown scaler {kind!r}", hint="use minmax, standard or none")
        span = np.where(span == 0, 1.0, span)  # constant columns map to 0, as sklearn does
        return cls(kind, shift, span)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.shift) / self.scale).astype(np.float32)

    def to_dict(self) -> dict:
        # numpy arrays, not device tensors: .tolist() here is no sync
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        return cls(
            d["kind"], np.asarray(d["shift"], dtype=np.float64), np.asarray(d["scale"], dtype=np.float64)
        )


@dataclass(frozen=True)
class Dataset:
    """A split, scaled data set as numpy arrays; ``to(device)`` makes the tensors."""

    name: str
    task: str  # "classification" | "regression"
    feature_names: tuple[str, ...]
    target_name: str
    x_train: np.ndarray  # float32, scaled
    x_test: np.ndarray
    y_train: np.ndarray  # int64 class ids, or float32 values
    y_test: np.ndarray
    classes: tuple | None  # original label of each class id; None for regression
    scaler: Scaler
    source: dict = field(default_factory=dict)  # where the rows came from (name, or CSV path and sha256)
    # regression: the target is standardised on the training rows (y_train/y_test hold scaled values),
    # so one learning rate suits any target's units; predictions and RMSE are mapped back. None: classes
    target_scaler: Scaler | None = None

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.classes is not None else 1

    def tensors(
        self, device: torch.device | str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_train, y_train, x_test, y_test)`` on ``device``: copied there once, kept there."""
        import torch

        return (
            torch.from_numpy(self.x_train).to(device),
            torch.from_numpy(self.y_train).to(device),
            torch.from_numpy(self.x_test).to(device),
            torch.from_numpy(self.y_test).to(device),
        )


def load_builtin(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str, str]:
    """``(X, y, feature_names, target_name, task)`` of a toy set shipped with scikit-learn."""
    if name not in BUILTIN:
        from difflib import get_close_matches

        close = get_close_matches(name, BUILTIN, n=1)
        suggestion = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(
            f"unknown dataset {name!r}",
            hint=f"{suggestion}built-in sets: {', '.join(BUILTIN)}; or give a CSV with --data FILE --target COLUMN",
        )
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    features = tuple(str(f) for f in bunch.feature_names)
    return np.asarray(bunch.data), np.asarray(bunch.target), features, "target", BUILTIN[name]


def split_and_scale(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    feature_names: tuple[str, ...],
    target_name: str,
    task: str,
    config: TrainConfig,
    classes: tuple | None = None,
    source: dict | None = None,
) -> Dataset:
    from sklearn.model_selection import train_test_split

    check_split_size(len(x), config.test_size)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=config.test_size, random_state=config.seed
    )
    scaler = Scaler.fit(config.scaler, x_train)
    target_scaler = None
    if task == "classification":
        if classes is None:
            classes = tuple(np.unique(y).tolist())  # numpy: no sync
        y_train, y_test = np.asarray(y_train, dtype=np.int64), np.asarray(y_test, dtype=np.int64)
    else:
        classes = None
        target_scaler = Scaler.fit("standard", np.reshape(y_train, (-1, 1)))
        y_train, y_test = (target_scaler.transform(np.reshape(y, (-1, 1)))[:, 0] for y in (y_train, y_test))
    return Dataset(
        name=name,
        task=task,
        feature_names=feature_names,
        target_name=target_name,
        x_train=scaler.transform(x_train),
        x_test=scaler.transform(x_test),
        y_train=y_train,
        y_test=y_test,
        classes=classes,
        scaler=scaler,
        source=source or {"kind": "builtin", "name": name},
        target_scaler=target_scaler,
    )


def check_split_size(n_rows: int, test_size: float) -> None:
    """A UserError when ``n_rows`` cannot give at least 2 training rows and 1 test row."""
    if _split_ok(n_rows, test_size):
        return
    needed = next(n for n in range(3, 10_000) if _split_ok(n, test_size))
    raise UserError(
        f"{n_rows} rows are too few for --test-size {test_size}: the split needs at least {needed} "
        "(2 to train on, 1 to test)",
        hint="add rows, or change --test-size",
    )


def _split_ok(n_rows: int, test_size: float) -> bool:
    n_test = math.ceil(test_size * n_rows)  # how train_test_split rounds a fractional test size
    return n_test >= 1 and n_rows - n_test >= 2


def load_csv(config: TrainConfig) -> Dataset:
    """A CSV named by ``config.data``: every column but ``config.target`` is a feature."""
    from devicelab import csvdata

    table = csvdata.read_table(config.data)
    csvdata.require_two_columns(table)
    target = csvdata.find_column(table, config.target)
    features = tuple(c for c in table.columns if c != target)
    n_read = len(table.rows)
    table = csvdata.check_missing(table, table.columns, dropna=config.dropna)
    x = csvdata.numeric_features(table, features)
    y = csvdata.encode_target(table, target, config.task)
    source = {
        "kind": "csv",
        "path": str(table.path.resolve()),
        "sha256": table.sha256,
        "delimiter": table.delimiter,
        "encoding": table.encoding,
        "rows_read": n_read,
        "rows_dropped": n_read - len(table.rows),
    }
    name = table.path.stem
    return split_and_scale(name, x, y.values, features, target, y.task, config, y.classes, source)


def load_dataset(config: TrainConfig) -> Dataset:
    """The data set a config names, split and scaled. Raises UserError on bad input."""
    if config.data is not None:
        return load_csv(config)
    x, y, features, target, task = load_builtin(config.dataset)
    return split_and_scale(config.dataset, x, y, features, target, config.task or task, config)
