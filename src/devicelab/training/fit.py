"""``devicelab.fit(model, X, y)``: the user's own module in devicelab's one trainer (``training/loop.py``).

The lesson's loop, written once by the user, is::

    model = MLP()
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    for epoch in range(20000):
        loss = criterion(model(X_train), y_train)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        losses.append(loss.item())

and ``devicelab.fit(model, X_train, y_train, X_test=X_test, y_test=y_test, epochs=20000)`` trains the same
module object with the same arithmetic, without a host sync between log points, and on the fused CPU kernel
or a captured CUDA graph when tracing finds an MLP in it (``devicelab.fast.match``).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from devicelab.errors import UserError
from devicelab.models import FlatMSE
from devicelab.training.config import TrainConfig
from devicelab.training.fit_data import dataset_from_arrays
from devicelab.training.loop import train
from devicelab.training.outputs import BinaryLogitLoss, FlatTargetLoss
from devicelab.training.result import RunResult
from devicelab.training.setup import make_loss
from devicelab.training.user_model import UserModel, record_of

OPTIMIZERS = ("sgd", "adam", "adamw")
LOSSES = {"cross_entropy": "classification", "mse": "regression", "bce": "classification"}


def fit(
    model: nn.Module,
    X,
    y=None,
    *,
    X_test=None,
    y_test=None,
    task: str | None = None,
    loss: str | nn.Module | None = None,
    optimizer: str | torch.optim.Optimizer = "sgd",
    lr: float = 0.01,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    epochs: int = 20000,
    batch_size: int | None = None,
    device: str = "auto",
    fast: str = "auto",
    threads: int | None = None,
    log_every: int = 100,
    seed: int = 42,
    test_size: float | None = None,
    scaler: str = "none",
    runs_dir: str | None = None,
    name: str | None = None,
    model_args: dict | None = None,
) -> RunResult:
    """Train ``model`` (any ``nn.Module``; its weights are updated in place) on ``X``/``y`` and return the
    same result as ``devicelab.train``: ``.losses``, ``.metrics``, ``.plot()``, ``.save()``.

    ``X``/``y``: numpy arrays, tensors, DataFrames/Series, or ``X`` a torch Dataset of ``(x, y)`` pairs and
    ``y`` None; used as given (no scaling, no split) unless ``scaler``/``test_size`` ask. The task
    (classification or regression) is inferred from ``y`` as ``devicelab train`` does, or ``task``.
    ``loss``: None (cross-entropy or MSE for the task; binary cross-entropy for a module with one output
    on a two-class target), "cross_entropy", "mse", "bce", or a loss module (a ``BCEWithLogitsLoss``
    takes one logit a row against the class ids 0/1; predictions are ``logit > 0``).
    ``optimizer``: "sgd", "adam", "adamw" (with ``lr``, ``momentum``, ``weight_decay``), or a
    ``torch.optim`` optimizer over ``model.parameters()``. ``batch_size`` None: full batch.
    ``device``: "auto" (timed), "cpu", "cuda", ...; a model already on a GPU stays there.
    ``runs_dir``: also write a run folder there (``result.folder``). ``model_args``: the constructor's
    keyword arguments, recorded so that the run folder can build the module again (predict, resume).
    Bad input raises ``devicelab.UserError`` (a ValueError) with one line saying what and how to fix."""
    if not isinstance(model, nn.Module):
        raise UserError(f"fit takes a torch.nn.Module, not a {type(model).__name__}")
    if task is None and (loss == "bce" or isinstance(loss, nn.BCEWithLogitsLoss)):
        task = "classification"  # targets 0/1 as floats are classes too
    dataset = dataset_from_arrays(
        X, y, X_test, y_test, task=task, test_size=test_size, seed=seed, scaler=scaler
    )
    device = _device(model, device)
    optimizer_name, optimizer_object = _optimizer(model, optimizer)
    config = TrainConfig(
        dataset="arrays", task=dataset.task, seed=seed, scaler=scaler, test_size=test_size or 0.2, hidden=(),
        optimizer=optimizer_name, lr=lr, momentum=momentum, weight_decay=weight_decay, epochs=epochs,
        batch_size=batch_size, device=device, fast=fast, threads=threads, log_every=log_every,
        runs_dir=runs_dir or "runs", name=name, quiet=True,
        extra={"model": record_of(model, model_args)},
    )  # fmt: skip
    user = UserModel(model, _loss(loss, dataset), optimizer_object, config.extra["model"])
    result = train(config, dataset=dataset, model=user)
    if runs_dir is not None:
        result = dataclasses.replace(result, folder=result.save(runs_dir, name))
    return result


def _device(model: nn.Module, device: str) -> str:
    """A model the user already put on a GPU trains there when the device is left to devicelab (one on
    the meta device has no values to train: refused by the check before training)."""
    where = next((t.device for t in (*model.parameters(), *model.buffers())), None)
    if device == "auto" and where is not None and where.type not in ("cpu", "meta"):
        return str(where)
    return device


def _optimizer(model: nn.Module, optimizer) -> tuple[str, torch.optim.Optimizer | None]:
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise UserError(
                f"optimizer={optimizer!r} is not one devicelab builds",
                hint=f"use {', '.join(OPTIMIZERS)}, or pass a torch.optim optimizer",
            )
        return optimizer, None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise UserError(
            f"optimizer must be a name or a torch.optim.Optimizer, not a {type(optimizer).__name__}"
        )
    ours = {id(p) for p in model.parameters()}
    theirs = [p for group in optimizer.param_groups for p in group["params"]]
    if not theirs or any(id(p) not in ours for p in theirs):
        raise UserError(
            "the optimizer holds tensors that are not the model's parameters",
            hint="build it from model.parameters() of the model passed to fit",
        )
    return type(optimizer).__name__.lower(), optimizer


def _loss(loss, dataset) -> nn.Module | None:
    if loss is None:
        return None  # devicelab's for the task (the fused kernel knows it)
    binary = loss == "bce" or isinstance(loss, nn.BCEWithLogitsLoss)
    if binary and dataset.classes is None:
        raise UserError(
            "binary cross-entropy takes a target of two classes, and task='regression' was given",
            hint="leave task out, or use loss='mse'",
        )
    if binary and len(dataset.classes) != 2:
        raise UserError(
            f"binary cross-entropy takes a target of two classes, and y has {len(dataset.classes)} classes",
            hint="use loss='cross_entropy' with one output per class, or pass a y of two classes",
        )
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise UserError(
                f"loss={loss!r} is not one devicelab builds", hint=f"use {', '.join(LOSSES)} or a loss module"
            )
        return BinaryLogitLoss() if loss == "bce" else make_loss(LOSSES[loss])
    if isinstance(loss, nn.BCEWithLogitsLoss):  # one logit a row against class ids 0/1 (outputs.py)
        return BinaryLogitLoss(loss)
    if type(loss) is nn.MSELoss and loss.reduction == "mean" and dataset.y_train.ndim == 1:
        return FlatMSE()  # an (n, 1) output against an (n,) target, without broadcasting to (n, n)
    if not callable(loss):
        raise UserError(f"loss must be a name or a callable loss module, not a {type(loss).__name__}")
    if dataset.task == "regression" and dataset.y_train.ndim == 1:
        return FlatTargetLoss(loss)  # the same for any other loss (L1, Huber, a function)
    return loss
