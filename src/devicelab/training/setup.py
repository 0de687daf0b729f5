"""Building the pieces of a run from its config: model, loss and optimizer (one place for all commands)."""

from __future__ import annotations

import torch
from torch import nn

from devicelab.data import Dataset
from devicelab.models import MLP
from devicelab.training.config import TrainConfig


def build_model(config: TrainConfig, dataset: Dataset) -> MLP:
    """The MLP for ``dataset``, initialised from ``config.seed`` (the same seed gives the same weights)."""
    torch.manual_seed(config.seed)
    return MLP(dataset.n_features, config.hidden, dataset.n_outputs, config.activation, config.dropout)


def make_loss(task: str) -> nn.Module:
    return nn.CrossEntropyLoss() if task == "classification" else _FlatMSE()


class _FlatMSE(nn.MSELoss):
    """MSE between an ``(n, 1)`` prediction and an ``(n,)`` target, without broadcasting to ``(n, n)``."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(prediction.squeeze(-1), target)


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")
