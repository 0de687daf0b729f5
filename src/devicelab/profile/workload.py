"""The pieces of one training step for a config on a device, optionally scaled up for the regime probe."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from devicelab.data import Dataset
from devicelab.training.config import TrainConfig
from devicelab.training.setup import build_model, make_loss, make_optimizer
from devicelab.training.step import make_plain_sgd_step, make_step
from devicelab.training.workload import uses_plain_sgd

STEP_KINDS = {
    "optim": "torch.optim step (devicelab.training.step.make_step)",
    "plain_sgd": "plain SGD step: autograd.grad + one foreach update (devicelab.training.step.make_plain_sgd_step)",
}


@dataclass
class Workload:
    """Model, loss, optimizer and one batch on ``device``, and which of devicelab's sync-free steps
    ``devicelab train`` would run on them (``kind``, a key of ``STEP_KINDS``)."""

    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    x: torch.Tensor
    y: torch.Tensor
    losses: torch.Tensor  # the step's on-device loss buffer
    device: torch.device
    kind: str
    lr: float

    @property
    def batch(self) -> int:
        return self.x.shape[0]

    def train_step(self) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], None]:
        """``step(x, y, losses, i)``: the step ``devicelab train`` makes for this config."""
        if self.kind == "plain_sgd":
            return make_plain_sgd_step(self.model, self.loss_fn, self.lr)
        return make_step(self.model, self.loss_fn, self.optimizer)

    def make_step(self) -> Callable[[int], None]:
        """``step(i)`` on this workload's batch, writing into its loss buffer."""
        step = self.train_step()
        n = self.losses.numel()
        return lambda i: step(self.x, self.y, self.losses, i % n)


def build_workload(
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device,
    *,
    batch_factor: int = 1,
    width_factor: int = 1,
    buffer: int = 1024,
) -> Workload:
    """The step a ``devicelab train`` run with ``config`` makes: the full training set (or the first
    ``batch_size`` rows), the batch repeated ``batch_factor`` times and hidden widths times ``width_factor``."""
    if width_factor != 1:
        config = dataclasses.replace(config, hidden=tuple(h * width_factor for h in config.hidden))
    model = build_model(config, dataset).to(device)
    x, y, _, _ = dataset.tensors(device)
    if config.batch_size is not None:
        x, y = x[: config.batch_size], y[: config.batch_size]
    if batch_factor != 1:
        x, y = x.repeat(batch_factor, *([1] * (x.dim() - 1))), y.repeat(batch_factor, *([1] * (y.dim() - 1)))
    losses = torch.zeros(buffer, device=device)
    optimizer = make_optimizer(config, model.parameters())
    kind = "plain_sgd" if uses_plain_sgd(config) else "optim"
    return Workload(model, make_loss(dataset.task), optimizer, x, y, losses, device, kind, config.lr)


def forward_macs(model: nn.Module, batch: int) -> int:
    """Forward multiply-accumulates of an MLP step: batch × the weights of every Linear layer."""
    return batch * sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))
