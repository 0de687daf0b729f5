"""Everything one training run holds on its device: data, model, loss, optimizer, the loss buffer and
the epoch function. Built the same way for the real run and for timing candidate devices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from devicelab.data import Dataset
from devicelab.errors import UserError
from devicelab.training.config import TrainConfig
from devicelab.training.epoch import make_epoch
from devicelab.training.setup import build_model, make_loss, make_optimizer
from devicelab.training.step import make_plain_sgd_step, make_step


@dataclass(frozen=True)
class Workload:
    """What one run holds on its device; ``optimizer_state()`` is what a run folder saves for --resume."""

    device: torch.device
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer | None  # None for plain SGD, whose step needs no optimizer object
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    losses: torch.Tensor  # one float32 slot per epoch, on the device
    generator: torch.Generator  # the mini-batch shuffle, on the device
    run_epoch: Callable[[int], None]  # epoch(i): trains one epoch, its loss into losses[i]

    def optimizer_state(self) -> dict:
        return self.optimizer.state_dict() if self.optimizer else {"state": {}, "param_groups": []}


def too_many_epochs(n_epochs: int, where: str) -> UserError:
    """The error for a loss history (4 bytes an epoch) that does not fit in memory."""
    return UserError(
        f"--epochs {n_epochs} needs {n_epochs * 4 / 1e9:.1f} GB for the loss history on {where}, "
        "more than there is",
        hint="train fewer epochs at a time and continue with --resume RUN --epochs N",
    )


def uses_plain_sgd(config: TrainConfig) -> bool:
    return config.optimizer == "sgd" and config.momentum == 0 and config.weight_decay == 0


def build_workload(config: TrainConfig, dataset: Dataset, device: torch.device, n_epochs: int) -> Workload:
    """Model initialised from ``config.seed`` (as the lesson's), data copied to ``device`` once."""
    model = build_model(config, dataset).to(device)
    loss_fn = make_loss(dataset.task)
    optimizer = None
    if uses_plain_sgd(config):
        step = make_plain_sgd_step(model, loss_fn, config.lr)
    else:  # (creating a torch.optim optimizer the first time also imports torch._dynamo: ~1 s)
        optimizer = make_optimizer(config, model.parameters())
        step = make_step(model, loss_fn, optimizer)
    x_train, y_train, x_test, y_test = dataset.tensors(device)
    try:
        losses = torch.zeros(n_epochs, device=device)
    except (RuntimeError, MemoryError):  # torch.OutOfMemoryError is a RuntimeError
        raise too_many_epochs(n_epochs, str(device)) from None
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    run_epoch = make_epoch(step, x_train, y_train, losses, config.batch_size, generator)
    return Workload(
        device, model, loss_fn, optimizer, x_train, y_train, x_test, y_test, losses, generator, run_epoch
    )
