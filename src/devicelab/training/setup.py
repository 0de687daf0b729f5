"""Building the pieces of a run from its config: model, loss and optimizer (one place for all commands)."""

from __future__ import annotations

import torch
from torch import nn

from devicelab.data import Dataset
from devicelab.models import MLP, FlatMSE, TabularMLP
from devicelab.training.config import TrainConfig


def build_model(config: TrainConfig, dataset: Dataset) -> MLP | TabularMLP:
    """The MLP for ``dataset``, initialised from ``config.init_seed`` or, when that is None (always, for
    ``devicelab train``), ``config.seed`` (the same seed gives the same weights)."""
    torch.manual_seed(config.seed if config.init_seed is None else config.init_seed)
    if dataset.embeddings:  # category codes in the last columns: embeddings before the MLP
        return TabularMLP(
            dataset.n_features, config.hidden, dataset.n_outputs, config.activation, config.dropout,
            dataset.embeddings,
        )  # fmt: skip
    return MLP(dataset.n_features, config.hidden, dataset.n_outputs, config.activation, config.dropout)


def make_loss(task: str) -> nn.Module:
    return nn.CrossEntropyLoss() if task == "classification" else FlatMSE()


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
