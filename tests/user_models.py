"""Modules in the styles people write them, for devicelab.fit and ``train --model user_models.py:NAME``
(tests/test_fit_robust.py, benchmarks/fit_robustness.py). Each takes the Iris rows (4 features, 3 classes)
by default; ``EXPECT`` says which the fx matcher must take as an MLP (and which must go eager, why)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn


class LoopSequential(nn.Module):
    """nn.Sequential built in a loop."""

    def __init__(self, inputs: int = 4, widths: tuple = (16, 16), classes: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Linear(inputs, width), nn.ReLU()]
            inputs = width
        layers.append(nn.Linear(inputs, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class ListOfLinears(nn.Module):
    """A ModuleList of Linear layers with a forward loop."""

    def __init__(self, sizes: tuple = (4, 12, 12, 3)):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x))
        return self.layers[-1](x)


class SharedGelu(nn.Module):
    """``self.act = nn.GELU()`` used after each hidden layer."""

    def __init__(self, hidden: int = 10):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(4, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 3)
        self.act = nn.GELU()

    def forward(self, x):
        return self.out(self.act(self.fc2(self.act(self.fc1(x)))))


class Masked(nn.Module):
    """An optional second argument (``mask=None``) that devicelab never passes."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 10), nn.Linear(10, 3)

    def forward(self, x, mask=None):
        if mask is not None:
            x = x * mask
        return self.fc2(F.relu(self.fc1(x)))


class Leaky(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 10), nn.LeakyReLU(0.1), nn.Linear(10, 3))

    def forward(self, x):
        return self.net(x)


class WithDropout(nn.Module):
    def __init__(self, p: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(p), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


class WithBatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


class Kwargs(nn.Module):
    """A forward that takes ``**kwargs`` (a flag the user's own code passes sometimes)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 10), nn.Linear(10, 3)

    def forward(self, x, **kwargs):
        h = F.relu(self.fc1(x))
        return self.fc2(h) / kwargs.get("temperature", 1.0)


class ReturnsTuple(nn.Module):
    """Returns (logits, hidden): trained on the first, as skorch reads a tuple."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 10), nn.Linear(10, 3)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return self.fc2(h), h


class ReturnsDict(ReturnsTuple):
    """Returns {"logits": ..., "hidden": ...}, as a Hugging Face model does: trained on "logits"."""

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return {"logits": self.fc2(h), "hidden": h}


class TwoHeads(ReturnsTuple):
    """A dict of two outputs, neither called "logits": which one is the prediction is not said."""

    def forward(self, x):
        h = F.relu(self.fc1(x))
        return {"species": self.fc2(h), "hidden": h}


class Standardises(nn.Module):
    """Buffers: the input's mean and scale, kept with the weights."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.full((4,), 0.5))
        self.register_buffer("scale", torch.full((4,), 2.0))
        self.fc1, self.fc2 = nn.Linear(4, 10), nn.Linear(10, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1((x - self.mean) * self.scale)))


class UnusedBuffer(nn.Module):
    """An MLP with a buffer its forward never reads (a counter the user keeps)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))
        self.fc1, self.fc2 = nn.Linear(4, 10), nn.Linear(10, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class Scaled(nn.Module):
    """A learned temperature: a parameter outside any Linear layer."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 10), nn.Linear(10, 3)
        self.scale = nn.Parameter(torch.tensor(1.5))

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x))) * self.scale


class Embedded(nn.Module):
    """Each of the 4 columns an integer code (0..9) with its own embedding."""

    def __init__(self, codes: int = 10, dim: int = 3):
        super().__init__()
        self.embed = nn.Embedding(codes, dim)
        self.fc = nn.Linear(4 * dim, 3)

    def forward(self, x):
        return self.fc(self.embed(x.long()).flatten(1))


class RawEmbedding(Embedded):
    """Indexes its embedding with the rows as they come: integer codes train (kept integers), floats are
    refused in one line."""

    def forward(self, x):
        return self.fc(self.embed(x).flatten(1))


class Softmaxed(nn.Module):
    """Ends in a softmax: cross-entropy then applies its log-softmax to probabilities."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 10), nn.Linear(10, 3)

    def forward(self, x):
        return F.softmax(self.fc2(F.relu(self.fc1(x))), dim=1)


class Frozen(nn.Module):
    """A first layer the user froze (``requires_grad=False``): only the last one learns."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 10), nn.Linear(10, 3)
        self.fc1.requires_grad_(False)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class Logit(nn.Module):
    """One logit a row for a yes/no target (the user would train it with BCEWithLogitsLoss)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 10), nn.Linear(10, 1)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class LazyFirst(nn.Module):
    """A LazyLinear first layer: its weights have no shape until the first forward."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.LazyLinear(10), nn.Linear(10, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class NeedsHidden(nn.Module):
    """A constructor argument without a default (``--model-args '{"hidden": 8}'``)."""

    def __init__(self, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, hidden), nn.Linear(hidden, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class Spare(nn.Module):
    """A layer defined and never used in forward (left from an experiment): it gets no gradient."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 10), nn.Linear(10, 3), nn.Linear(10, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def make_mlp(num_classes: int = 3, width: int = 8, depth: int = 1, **kwargs) -> nn.Module:
    """A torchvision-like factory: keyword arguments, some ignored (``**kwargs``)."""
    layers: list[nn.Module] = [nn.Linear(4, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, num_classes))


def float64_mlp() -> nn.Module:
    """Built in double precision: the rows follow (float64), the fused kernel (float32) leaves it eager."""
    return nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 3)).double()


# constructor keyword arguments (fit's model_args=, the CLI's --model-args), where a module takes some
ARGS = {"make_mlp": {"width": 12, "depth": 2, "weights": None}, "NeedsHidden": {"hidden": 8}}

# name -> (what fit must do: "mlp", "eager" (a fragment of the reason), or "refused" (of the error))
EXPECT = {
    "LoopSequential": ("mlp", ""),
    "ListOfLinears": ("mlp", ""),
    "SharedGelu": ("mlp", ""),
    "UnusedBuffer": ("mlp", ""),
    "make_mlp": ("mlp", ""),
    "LazyFirst": ("mlp", ""),  # shaped by the probe's forward, then a Linear like any other
    "NeedsHidden": ("mlp", ""),
    "Spare": (
        "eager",
        "not the Linear layers'",
    ),  # an MLP to the matcher; its unused fc3 keeps it off the kernel
    "Masked": ("mlp", ""),
    "Leaky": ("eager", "LeakyReLU"),
    "WithDropout": ("eager", "dropout"),
    "WithDropout.eval()": ("eager", "dropout"),  # handed over in eval mode: trained in training mode
    "WithBatchNorm": ("eager", "batch normalisation"),
    "Kwargs": ("eager", "inputs"),
    "Standardises": ("eager", "buffer"),
    "Scaled": ("eager", "parameter"),
    "Embedded": ("eager", "embedding"),
    "Softmaxed": ("eager", "softmax"),
    "Frozen": ("eager", "frozen"),
    "ReturnsTuple": ("eager", "returns a tuple of outputs"),  # trained on its first output
    "ReturnsDict": ("eager", "returns a dict of outputs"),  # trained on its "logits"
    "TwoHeads": ("refused", "none of them is 'logits'"),
    "RawEmbedding": ("eager", "embedding"),  # given integer codes (INTEGER_CODES)
    "float64_mlp": ("eager", "float32"),
    "Logit": ("eager", "BinaryLogitLoss"),  # on a two-class target (BINARY)
}

# modules the robustness survey gives integer codes 0..9 (as integers), as their users would
INTEGER_CODES = {"Embedded", "RawEmbedding"}

# MLPs to the matcher that the fused kernel still leaves to the eager step (it trains float32 only)
KERNEL_ONLY = {"float64_mlp", "Logit", "Spare"}

# modules the robustness survey trains on a two-class target (versicolor or not), with binary cross-entropy
BINARY = {"Logit"}


def binary_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A yes/no target's loss as users write it: one logit a row, the 0/1 targets as floats."""
    return nn.functional.binary_cross_entropy_with_logits(out.reshape(-1), y.float())


def plain_loop(model: nn.Module, x, y, epochs: int, lr: float = 0.1, loss_fn=None) -> list[float]:
    """The reference: the user's own loop (SGD, cross-entropy or ``loss_fn``, a host read every step)."""
    loss_fn = loss_fn or nn.functional.cross_entropy
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        out = model(x)
        if isinstance(out, tuple):  # return logits, hidden: the user's loop takes the first
            out = out[0]
        elif isinstance(out, dict):  # {"logits": ..., ...}: the user's loop takes out["logits"]
            out = out["logits"]
        loss = loss_fn(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # the user's loop: a host read every step
    return losses
