"""Which models a fast path can take: ``match_mlp(model)`` gives the layer widths and the activation of
a plain ``Linear → activation → … → Linear`` stack, or the one-line reason it is not one. Both fast
paths (the fused CPU kernel, the captured CUDA step) ask this one function; FLOPs a step are counted
here too (``step_flops``), for every caller that needs them.

Today the match is by type (devicelab's own ``MLP``); a tracer that reads any module's graph can take
its place behind the same call.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from torch import nn

from devicelab.models import ACTIVATIONS, MLP

_NAMES = {kind: name for name, kind in ACTIVATIONS.items()}  # nn.ReLU -> "relu"


@dataclass(frozen=True)
class MLPShape:
    widths: tuple[int, ...]  # n_inputs, hidden..., n_outputs
    activation: str  # "relu", "gelu" or "tanh" (devicelab.models.ACTIVATIONS)

    @property
    def macs(self) -> int:
        """Forward multiply-accumulates a row."""
        return sum(i * o for i, o in pairwise(self.widths))


def linear_macs(model: nn.Module) -> int:
    """Forward multiply-accumulates a row of any module's ``nn.Linear`` layers."""
    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


def step_flops(macs: int, batch: int) -> float:
    """FLOPs of one training step on ``batch`` rows: forward and backward are about 3 matmuls a layer,
    2 FLOPs a multiply-accumulate."""
    return 6.0 * batch * macs


def match_mlp(model: nn.Module) -> tuple[MLPShape | None, str]:
    """The shape a fast path trains, or (None, why in one line), the checks cheapest first."""
    if type(model) is not MLP:  # any other module may branch on its data or sync inside forward
        return None, f"the model is a {type(model).__name__}, not devicelab's MLP"
    if model.spec.get("dropout", 0.0) > 0 or any(isinstance(m, nn.Dropout) for m in model):
        return None, "dropout draws random numbers, which the fast paths do not"
    if has_hooks(model):
        return None, "the model has hooks, which a fast path would skip"
    modules = list(model)
    linears, activations = modules[0::2], modules[1::2]
    if len(modules) % 2 != 1 or not all(type(m) is nn.Linear and m.bias is not None for m in linears):
        return None, "the MLP's layers are not Linear/activation pairs"
    kinds = {type(m) for m in activations}
    if len(kinds) > 1 or not kinds <= set(_NAMES):
        return None, f"activation {', '.join(sorted(k.__name__ for k in kinds))} is not fused"
    if any(isinstance(m, nn.GELU) and m.approximate != "none" for m in activations):
        return None, "only the exact (erf) GELU is fused"
    widths = (linears[0].in_features, *(m.out_features for m in linears))
    return MLPShape(widths, _NAMES[kinds.pop()] if kinds else "relu"), ""


def has_hooks(model: nn.Module) -> bool:
    hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    if any(getattr(m, h, None) for m in model.modules() for h in hooks):
        return True
    return any(getattr(p, "_backward_hooks", None) for p in model.parameters())
