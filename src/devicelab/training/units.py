"""A regression target's units: the model trains on the target as its encoding transformed it (today
standardised on the training rows: ``Dataset.target_scaler``), and every number a person reads (loss,
RMSE, R², predictions) is in the target's own units, mapped back with that encoding's inverse.

An affine encoding (a ``Scaler``: ``(y - shift) / scale``) needs no inverse on the device: residuals are
``scale`` times the scaled ones and R² is the same in both units, which keeps float32 exact for targets with
a large offset. A non-affine transform (a log, ...) plugs in by giving its encoding object
``inverse_transform(values)`` (numpy) and ``inverse_tensor(tensor)`` (torch, for metrics on the device).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from devicelab.data import Dataset

if TYPE_CHECKING:
    import torch


def to_units(dataset: Dataset, values: np.ndarray) -> np.ndarray:
    """Model outputs (or encoded targets) of ``dataset`` back in the target's units (float64)."""
    encoding = dataset.target_scaler
    values = np.asarray(values, dtype=np.float64)
    if encoding is None:
        return values
    inverse = getattr(encoding, "inverse_transform", None)
    if inverse is not None:
        return np.asarray(inverse(values), dtype=np.float64).reshape(values.shape)
    return values * float(encoding.scale[0]) + float(encoding.shift[0])


def scale_of(encoding) -> float:
    """How many target units one unit of an affine encoding is (1.0: no encoding, or a non-affine one,
    whose metrics go through ``tensor_inverse``)."""
    if encoding is None or tensor_inverse(encoding) is not None:
        return 1.0
    return float(encoding.scale[0])


def tensor_inverse(encoding) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A non-affine encoding's inverse on the device; None for an affine one (or none)."""
    return getattr(encoding, "inverse_tensor", None) if encoding is not None else None


def loss_factor(encoding) -> float | None:
    """What turns a mean squared error of the encoded target into one in the target's units: ``scale²``
    for an affine encoding (1 for none); None when no factor can (a non-affine transform)."""
    if tensor_inverse(encoding) is not None:
        return None
    return scale_of(encoding) ** 2


def in_units(row: dict, task: str, encoding) -> dict:
    """A metrics row (``RunResult.final``) with its losses in the target's units, so that they agree with
    the RMSE and R² beside them (test loss = test RMSE²). A classification row, or a target trained as it
    is, is returned as it is. Under a non-affine transform a loss with no RMSE beside it (the training
    loss) cannot be mapped and is left out."""
    if task != "regression" or encoding is None:
        return dict(row)
    factor = loss_factor(encoding)
    out = {}
    for key, value in row.items():
        if not key.endswith("_loss"):
            out[key] = value
        elif factor is not None:
            out[key] = value * factor
        elif f"{key[:-5]}_rmse" in row:  # the mean squared error in units is the RMSE squared
            out[key] = row[f"{key[:-5]}_rmse"] ** 2
    return out
