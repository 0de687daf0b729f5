"""Before a user's module trains: one forward on two rows, so that a module that does not fit the data
fails with one line that says which shape was expected and why, not a traceback an hour in."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
from torch import nn

from devicelab.data import Dataset
from devicelab.errors import DevicelabWarning, UserError
from devicelab.i18n import N_
from devicelab.training.outputs import prediction, single_logit
from devicelab.training.user_inputs import check_codes, check_devices, integer_rows, rows_for

SOFTMAX_WARNING = N_(
    "the model's outputs are probabilities (a softmax at its end?), and cross-entropy applies its own "
    "log-softmax: the gradients shrink and training stalls; return the scores before the softmax (logits)"
)


class Checked(NamedTuple):
    """What the probe found: the rows in the dtype the module takes, and its output's shape for two."""

    dataset: Dataset
    out_shape: tuple[int, ...]


def check_user_model(
    module: nn.Module, dataset: Dataset, device: str, loss_fn: nn.Module | None, inputs: str | None = None
) -> Checked:
    """``dataset`` with its rows in the dtype ``module`` takes (``devicelab.training.user_inputs``) and the
    shape of the module's output for two of them; a UserError when ``module`` is on another device than
    ``device`` asks (or on several, or on meta), cannot take the rows, or gives outputs that do not fit
    the targets (and the loss). ``inputs="int"``: the rows as integers, asked for (``--model-inputs``)."""
    where = check_devices(module, device)
    _check_trainable(module)
    dataset = rows_for(module, integer_rows(dataset) if inputs == "int" else dataset, where, inputs == "int")
    x = torch.from_numpy(dataset.x_train[:2]).to(where or "cpu")
    was_training = module.training
    module.eval()  # no dropout draw and no batch-norm statistics changed by the probe
    try:
        with torch.no_grad():
            out = module(x)
    except Exception as error:
        raise UserError(
            f"the model cannot take the data: model(x) with x of shape {tuple(x.shape)} raised "
            f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:160]}",
            hint=_input_hint(error, dataset, module),
        ) from None
    finally:
        module.train(was_training)
    if dataset.x_train.dtype.kind in "iu":  # the two rows ran: every code in range, not just theirs
        check_codes(module, dataset, where)
    out = prediction(out)  # (logits, hidden): the first; {"logits": ...}: that (training/outputs.py)
    if loss_fn is None:  # devicelab's loss for the task: its shape rule is known
        _check_shape(tuple(out.shape), dataset)
    else:  # the user's loss: tried on the probe's output, so that a mismatch is one line, not a traceback
        _check_loss(loss_fn, out, dataset)
    cross_entropy = loss_fn is None or isinstance(loss_fn, nn.CrossEntropyLoss)
    if dataset.task == "classification" and cross_entropy and _probabilities(out):
        warnings.warn(SOFTMAX_WARNING, DevicelabWarning, stacklevel=4)  # at the fit() call
    return Checked(dataset, tuple(out.shape))


def _check_trainable(module: nn.Module) -> None:
    """A module with no parameter that a step would change (none at all, or every one frozen) is one line."""
    n = sum(1 for _ in module.parameters())
    if not any(p.requires_grad for p in module.parameters()):
        what = (
            f"its {n} parameter tensor(s) are all frozen (requires_grad=False)"
            if n
            else "it has no parameters"
        )
        raise UserError(
            f"the model has nothing to train: {what}",
            hint="unfreeze the layers to train (layer.requires_grad_(True)), or use the model without training it",
        )


def _check_loss(loss_fn, out: torch.Tensor, dataset: Dataset) -> None:
    y = torch.from_numpy(dataset.y_train[: len(out)]).to(out.device)
    try:
        with torch.no_grad():
            loss = loss_fn(out, y)
    except Exception as error:
        raise UserError(
            f"the loss cannot take the model's output and the targets: {type(loss_fn).__name__} of an output of "
            f"shape {tuple(out.shape)} and targets of shape {tuple(y.shape)} ({y.dtype}) raised "
            f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:160]}",
            hint="make the model's output fit the loss and the targets (cross-entropy: a score per class and "
            "a class index a row; MSE: a number a target)",
        ) from None
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise UserError(
            f"the loss returns {shape}, not one number to minimise",
            hint="use its reduction='mean' (the default)",
        )


def _probabilities(out: torch.Tensor) -> bool:
    """The rows are probabilities (non-negative, summing to 1): a softmax at the model's end."""
    if out.ndim != 2 or out.shape[1] < 2 or not out.is_floating_point():
        return False
    sums_to_one = (out >= 0).all() & ((out.sum(dim=1) - 1).abs() < 1e-4).all()
    return bool(sums_to_one)  # sync: once, on the probe's two rows, before training


def _check_shape(shape: tuple[int, ...], dataset: Dataset) -> None:
    n = 2 if len(dataset.x_train) >= 2 else len(dataset.x_train)
    if dataset.task == "classification":
        classes = len(dataset.classes)
        if single_logit(shape, classes):  # one logit for two classes: binary cross-entropy (outputs.py)
            return
        if len(shape) != 2 or shape[1] < classes:
            raise UserError(
                f"the model's output has shape {shape} for {n} rows, expected ({n}, {classes}): "
                f"cross-entropy needs one score per class, and the target has {classes} classes",
                hint=f"make the last layer output {classes} values",
            )
        if shape[1] > classes:  # cross-entropy takes it; a score no row has as its target is likely a slip
            extra = (
                f"the model gives {shape[1]} scores a row and the target has {classes} classes: scores "
                f"{classes} and up are never a row's target, and predict labels a row with its best known "
                f"class; make the last layer output {classes} values unless that is meant"
            )  # said in other languages through devicelab.i18n.templates
            warnings.warn(extra, DevicelabWarning, stacklevel=5)  # at the fit() call
        return
    target = dataset.y_train.shape[1:]
    if shape[1:] not in (target, (*target, 1)) or shape[:1] != (n,):
        expected = (n, *target) if target else f"({n},) or ({n}, 1)"
        raise UserError(
            f"the model's output has shape {shape} for {n} rows, expected {expected}: the mean squared "
            "error compares each output with its target",
            hint="make the last layer output one value per target",
        )


def _input_hint(error: Exception, dataset: Dataset, module: nn.Module) -> str:
    if "'indices'" in str(error):  # an embedding given floating rows
        return (
            "the rows reach the model as floats; an embedding takes integer codes: pass X as integers "
            "(devicelab.fit), or --model-inputs int --scaler none (a file), or index it with x.long()"
        )
    if "index out of range" in str(error):  # a code beyond an embedding's rows
        return "an embedding takes codes from 0 to num_embeddings - 1: make it larger, or map the codes"
    if dataset.x_train.dtype.kind in "iu":  # integers asked for (--model-inputs int)
        return "the rows reach the model as int64 (--model-inputs int); leave that out for float32 rows"
    return f"the data has {_features(dataset)}; make the model's input match"


def _features(dataset: Dataset) -> str:
    shape = dataset.x_train.shape[1:]
    return f"{shape[0]} features a row" if len(shape) == 1 else f"rows of shape {tuple(shape)}"
