"""The models devicelab trains: an MLP whose layer names match the lesson's (fc1, relu, fc2)."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Sequential):
    """``Linear → activation [→ Dropout]`` per hidden layer, then a final ``Linear``.

    With one hidden layer the modules are named exactly like the lesson's model (``fc1``, ``relu``,
    ``fc2``), so its ``state_dict`` keys match and weights move between the two. Layers are created in
    the lesson's order, so the same seed gives the same initial weights.
    """

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int],
        n_outputs: int,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        widths = [n_inputs, *hidden]
        single = len(hidden) == 1
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths), start=1):
            layers[f"fc{i}"] = nn.Linear(fan_in, fan_out)
            layers[activation if single else f"{activation}{i}"] = ACTIVATIONS[activation]()
            if dropout > 0:
                layers["dropout" if single else f"dropout{i}"] = nn.Dropout(dropout)
        layers[f"fc{len(widths)}"] = nn.Linear(widths[-1], n_outputs)
        super().__init__(layers)
        self.spec = {
            "n_inputs": n_inputs,
            "hidden": list(hidden),
            "n_outputs": n_outputs,
            "activation": activation,
            "dropout": dropout,
        }


class TabularMLP(nn.Module):
    """An MLP over numbers and categories: the last ``len(embeddings)`` input columns hold category codes
    (whole numbers in the float32 matrix), each looked up in its own ``nn.Embedding``; the embeddings are
    concatenated after the other columns and fed to an ``MLP``. The step still takes one float32 tensor.
    A data set without embedded categories gets the plain ``MLP`` (the lesson's names and weights)."""

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int],
        n_outputs: int,
        activation: str = "relu",
        dropout: float = 0.0,
        embeddings: Sequence[Sequence[int]] = (),
    ) -> None:
        super().__init__()
        self.n_codes = len(embeddings)
        self.embeds = nn.ModuleList(nn.Embedding(int(slots), int(width)) for slots, width in embeddings)
        width = n_inputs - self.n_codes + sum(int(w) for _, w in embeddings)
        self.mlp = MLP(width, hidden, n_outputs, activation, dropout)
        self.spec = {
            **self.mlp.spec,
            "n_inputs": n_inputs,
            "embeddings": [[int(n), int(w)] for n, w in embeddings],
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.n_codes
        codes = x[:, x.shape[1] - k :].long()
        parts = [x[:, : x.shape[1] - k], *(embed(codes[:, i]) for i, embed in enumerate(self.embeds))]
        return self.mlp(torch.cat(parts, dim=1))


class FlatMSE(nn.MSELoss):
    """MSE between an ``(n, 1)`` prediction and an ``(n,)`` target, without broadcasting to ``(n, n)``."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(prediction.squeeze(-1), target)


def build_mlp(spec: dict) -> nn.Module:
    """Rebuild a model from the ``spec`` dict that ``MLP.spec`` holds (as saved in a run folder)."""
    if spec.get("embeddings"):
        return TabularMLP(
            int(spec["n_inputs"]),
            [int(h) for h in spec["hidden"]],
            int(spec["n_outputs"]),
            activation=str(spec.get("activation", "relu")),
            dropout=float(spec.get("dropout", 0.0)),
            embeddings=spec["embeddings"],
        )
    return MLP(
        int(spec["n_inputs"]),
        [int(h) for h in spec["hidden"]],
        int(spec["n_outputs"]),
        activation=str(spec.get("activation", "relu")),
        dropout=float(spec.get("dropout", 0.0)),
    )
