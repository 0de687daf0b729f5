"""How a module's outputs read as predictions, and a classifier's as classes: one score per class, or, for
two classes, one logit (the ``nn.Linear(h, 1)`` + ``BCEWithLogitsLoss`` a user writes for a yes/no target).

A module that returns more than its prediction (``return logits, hidden``; ``return {"logits": ...,
"aux": ...}``) trains on its prediction (``prediction``): the first item of a tuple or list, as skorch
reads one, or the ``"logits"`` entry of a dict, as a Hugging Face model returns it. The loss (devicelab's
or the user's), the metrics and predict all take that tensor; the other outputs are not used.

A single logit ``z`` is the score pair ``(0, z)``: its softmax is ``(1 - sigmoid(z), sigmoid(z))``, its
argmax is class 1 exactly when ``z > 0``, so accuracy, predictions, confidences and the masking of a class
without training rows work unchanged on ``class_scores(out)``. The targets stay class ids (0 and 1).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from devicelab.errors import UserError


def prediction(out) -> torch.Tensor:
    """The prediction in a module's output ``out``: the tensor itself, the first item of a tuple or list,
    the ``"logits"`` entry of a dict (or its only tensor); a UserError for anything else."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        return out[0]  # (logits, hidden, ...): the first is the prediction
    if isinstance(out, Mapping):
        if isinstance(out.get("logits"), torch.Tensor):
            return out["logits"]
        tensors = [v for v in out.values() if isinstance(v, torch.Tensor)]
        if len(tensors) == 1:
            return tensors[0]
        keys = ", ".join(repr(k) for k in out)
        raise UserError(
            f"the model returns a dict with the keys {keys} and none of them is 'logits', so devicelab "
            "cannot tell which is the prediction",
            hint="return the prediction under the key 'logits', or as the first item of a tuple",
        )
    raise UserError(
        f"the model returns a {type(out).__name__}, not a tensor",
        hint="its forward must return the predictions as one tensor, the first item of a tuple, or the "
        "'logits' entry of a dict",
    )


def single_logit(shape: tuple[int, ...], n_classes: int) -> bool:
    """An output of ``shape`` is one logit a row for a two-class target: ``(n,)`` or ``(n, 1)``."""
    return n_classes == 2 and (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))


def class_scores(out: torch.Tensor, class_dim: int = 1) -> torch.Tensor:
    """``out`` with one score per class along ``class_dim``: a single logit ``z`` becomes ``(0, z)``;
    other outputs are returned as they are."""
    if out.ndim == class_dim:  # (n,) or (M, n): one logit a row, no class dimension
        out = out.unsqueeze(-1)
    if out.shape[class_dim] != 1:
        return out
    return torch.cat([torch.zeros_like(out), out], dim=class_dim)


class FlatTargetLoss(nn.Module):
    """The user's own regression loss (``L1Loss``, ``HuberLoss``, a function) on an ``(n, 1)`` output against
    the ``(n,)`` target devicelab holds (a ``y`` of shape ``(n, 1)`` is kept as ``(n,)``): the output
    flattened first, so the loss compares row with row, as the user's loop did, and never broadcasts to
    ``(n, n)``."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if out.ndim == y.ndim + 1 and out.shape[-1] == 1:  # (n, 1) against (n,)
            out = out.squeeze(-1)
        return self.inner(out, y)


class BinaryLogitLoss(nn.Module):
    """Binary cross-entropy on one logit a row against class ids 0/1 (``BCEWithLogitsLoss`` after the
    output is flattened to the targets' shape and the ids made floats); ``inner``: the user's own
    ``BCEWithLogitsLoss`` (its ``weight``, ``pos_weight`` and ``reduction`` kept), None for the default."""

    def __init__(self, inner: nn.BCEWithLogitsLoss | None = None) -> None:
        super().__init__()
        self.inner = inner or nn.BCEWithLogitsLoss()

    def forward(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if out.shape != y.shape and out.numel() == y.numel():  # (n, 1) against (n,)
            out = out.reshape(y.shape)
        return self.inner(out, y.to(out.dtype))
