"""A regression target's units: the model trains on the target as its encoding transformed it (today
standardised on the training rows: ``Dataset.target_scaler``), and every number a person reads (loss,
RMSE, R², predictions) is computed after mapping back with that encoding's own inverse.

A target transform plugs in by giving its encoding object an ``inverse_transform(values)`` method
(numpy) and, for metrics computed on the device, ``inverse_tensor(tensor)`` (torch); an encoding without
them is taken as the affine ``(y - shift) / scale`` a ``Scaler`` is.
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


def tensor_to_units(encoding) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The device-side inverse of a target encoding (``Dataset.target_scaler``, or a saved one); None when
    the target is not transformed (classes, or a target trained as it is)."""
    if encoding is None:
        return None
    inverse = getattr(encoding, "inverse_tensor", None)
    if inverse is not None:
        return inverse
    scale, shift = float(encoding.scale[0]), float(encoding.shift[0])
    return lambda t: t * scale + shift
