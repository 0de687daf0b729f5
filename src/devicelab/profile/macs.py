"""Parameter counts and multiply-accumulates (MACs) of one module call, from shapes alone (no sync).

One MAC is one ``a * b + c``. A Linear layer producing ``out`` from ``in_features`` inputs does
``out.numel() * in_features`` MACs; a convolution does ``out.numel() * (in_channels / groups) * kernel
volume``. Layers that only compare or move values (ReLU, pooling, dropout, reshapes) count 0; layers
that scale every element (normalisations) count one MAC per output element. Anything else with
parameters is unknown (``None``) rather than guessed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


def parameter_count(module: nn.Module, *, recurse: bool = False) -> int:
    """Parameters owned by ``module`` (with ``recurse``, also by its children; a parametrized weight's
    ``weight_norm`` factors are its own)."""
    own = sum(p.numel() for p in module.parameters(recurse=recurse))
    parametrizations = getattr(module, "parametrizations", None)
    if not recurse and isinstance(parametrizations, nn.ModuleDict):
        own += sum(p.numel() for p in parametrizations.parameters())
    return own


def _linear(m: nn.Linear, inp: torch.Tensor, out: torch.Tensor) -> int:
    return out.numel() * m.in_features


def _conv(m: nn.modules.conv._ConvNd, inp: torch.Tensor, out: torch.Tensor) -> int:
    return out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)


def _conv_transpose(m: nn.modules.conv._ConvTransposeNd, inp: torch.Tensor, out: torch.Tensor) -> int:
    # every input element is multiplied into a kernel-sized patch of each of its group's output channels
    return inp.numel() * (m.out_channels // m.groups) * math.prod(m.kernel_size)


_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _rnn(m: nn.RNNBase, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Every time step of every layer and direction: gates × hidden × (its input + hidden)."""
    steps_rows = out.numel() // out.shape[-1]  # (sequence × batch) positions
    dirs = 2 if m.bidirectional else 1
    macs = 0
    for layer in range(m.num_layers):
        width = m.input_size if layer == 0 else m.hidden_size * dirs
        macs += dirs * _GATES.get(m.mode, 1) * m.hidden_size * (width + m.hidden_size)
    return steps_rows * macs


def _attention(m: nn.MultiheadAttention, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Self-attention: the q, k, v and output projections, and the two (length × length) products."""
    e = m.embed_dim
    length = inp.shape[1] if (m.batch_first and inp.dim() == 3) else inp.shape[0]
    return 4 * inp.numel() * e + 2 * inp.numel() * length


def _per_element(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    return out.numel()


def _free(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    return 0


_RULES: tuple[tuple[type[nn.Module], Callable[..., int]], ...] = (
    (nn.Linear, _linear),
    (nn.modules.conv._ConvTransposeNd, _conv_transpose),  # before _ConvNd: it is a subclass
    (nn.modules.conv._ConvNd, _conv),
    (nn.modules.batchnorm._NormBase, _per_element),
    (nn.LayerNorm, _per_element),
    (nn.GroupNorm, _per_element),
    (nn.Embedding, _free),  # a table lookup: no multiply-add
    (nn.RNNBase, _rnn),
    (nn.MultiheadAttention, _attention),
)


def module_macs(module: nn.Module, inp: torch.Tensor | None, out: torch.Tensor | None) -> int | None:
    """MACs of one call of a leaf ``module`` that read ``inp`` and produced ``out``; None if unknown."""
    if inp is None or out is None:
        return None
    for kind, rule in _RULES:
        if isinstance(module, kind):
            return int(rule(module, inp, out))
    if parameter_count(module) == 0:
        return _free(module, inp, out)
    return None


def first_tensor(value: object) -> torch.Tensor | None:
    """The first tensor in a module's input or output (a tensor, or a tuple/list/dict holding some)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None
