"""How a regression target is scaled for training, and back (``--target-transform``).

One learning rate suits any target once it is scaled; a few extreme values (prices x200) must not set
that scale, and a positive, heavy-tailed target (incomes, prices, counts) is better learned on a log
scale. ``auto`` chooses: ``log`` for a positive target whose extremes a log tames, ``robust`` (median and
interquartile range) for other targets with extreme rows, ``standard`` otherwise.
``inverse_transform`` maps model outputs back to the target's units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devicelab.errors import UserError

TRANSFORMS = ("auto", "none", "standard", "robust", "log")
SAMPLE = 20_000  # the median and spread of a long target are taken over this many evenly spaced rows
EXTREME = 8.0
LOG_SPAN = 50.0  # auto takes the log of a positive target whose largest value is this many times its median  # a value this many robust spreads (MAD x 1.4826) from the median is an extreme row


@dataclass(frozen=True)
class TargetScaling:
    """``y -> (f(y) - shift) / scale`` with f the identity, or log1p for ``log``."""

    kind: str  # "none" | "standard" | "robust" | "log"
    shift: np.ndarray  # one value (an array, as Scaler's)
    scale: np.ndarray
    reason: str = ""  # why ``auto`` chose it

    @classmethod
    def fit(cls, kind: str, y: np.ndarray) -> TargetScaling:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        reason = ""
        if kind == "auto":
            kind, reason = choose(y)
        if kind not in TRANSFORMS[1:]:
            raise UserError(
                f"unknown --target-transform {kind!r}", hint=f"use one of {', '.join(TRANSFORMS)}"
            )
        if kind == "log" and y.size and y.min() <= -1:
            raise UserError(
                f"--target-transform log needs targets above -1, the smallest is {y.min():g}",
                hint="use --target-transform robust",
            )
        f = np.log1p(y) if kind == "log" else y
        if kind == "none":
            shift, scale = 0.0, 1.0
        elif kind == "robust":
            q1, median, q3 = np.percentile(f, [25, 50, 75])
            shift, scale = median, q3 - q1 or f.std()
        else:
            shift, scale = f.mean(), f.std()
        scale = scale if scale > 0 else 1.0
        return cls(kind, np.array([shift]), np.array([scale]), reason)

    def transform(self, y: np.ndarray) -> np.ndarray:
        """Training values (float32) of targets in their units."""
        y = np.asarray(y, dtype=np.float64)
        f = np.log1p(y) if self.kind == "log" else y
        return ((f - self.shift[0]) / self.scale[0]).astype(np.float32)

    def inverse_transform(self, z):
        """Targets in their units of model outputs: a numpy array (float64) or a torch tensor (same dtype
        and device, no sync), so metrics can be taken in the target's units on the device."""
        if not hasattr(z, "expm1"):  # numpy, lists
            z = np.asarray(z, dtype=np.float64)
        f = z * float(self.scale[0]) + float(self.shift[0])
        if self.kind != "log":
            return f
        return f.expm1() if hasattr(f, "expm1") else np.expm1(f)

    @property
    def linear(self) -> bool:
        """True when the map is affine: a scaled error times ``scale`` is the error in the target's units."""
        return self.kind != "log"

    def describe(self) -> str:
        how = {
            "none": "as it is",
            "standard": "standardised (mean, standard deviation)",
            "robust": "scaled by median and interquartile range (robust to outliers)",
            "log": "log(1 + y), then standardised",
        }[self.kind]
        return how + (f" ({self.reason})" if self.reason else "")

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "shift": self.shift.tolist(),  # numpy on the host: no device sync
            "scale": self.scale.tolist(),  # numpy on the host: no device sync
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TargetScaling:
        """A saved scaling; runs saved before this module wrote a standard Scaler's dict."""
        return cls(
            d["kind"] if d["kind"] in TRANSFORMS else "standard",
            np.asarray(d["shift"], dtype=np.float64),
            np.asarray(d["scale"], dtype=np.float64),
            d.get("reason", ""),
        )


def extreme_rows(y: np.ndarray) -> np.ndarray:
    """Indices of the values more than EXTREME robust spreads from the median."""
    y = np.asarray(y, dtype=np.float64)
    sample = y[:: -(-y.size // SAMPLE)] if y.size > SAMPLE else y  # evenly spaced: as good a center
    median = np.median(sample)
    spread = 1.4826 * np.median(np.abs(sample - median))
    if spread == 0:
        spread = sample.std()
    if spread == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.abs(y - median) > EXTREME * spread)


def choose(y: np.ndarray) -> tuple[str, str]:
    """``(kind, reason)`` for ``auto``: ``log`` only for a positive, skewed target whose largest value is
    LOG_SPAN times its median (a model trained on log values predicts a typical value, not the mean: only
    worth it when a few rows dominate the raw scale); ``robust`` for other extremes."""
    extreme = extreme_rows(y)
    if extreme.size == 0:
        return "standard", ""
    if y.min() > 0 and y.max() > LOG_SPAN * np.median(y) and _skew(y) > 2:
        return "log", f"auto: positive, heavy-tailed, max {y.max() / np.median(y):.0f}x the median"
    return "robust", "auto: extreme values"


def _skew(y: np.ndarray) -> float:
    std = y.std()
    return float(np.mean(((y - y.mean()) / std) ** 3)) if std > 0 else 0.0
