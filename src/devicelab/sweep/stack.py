"""Many MLPs of one shape as stacked tensors: ``params[i]`` is the ``i``-th tensor of
``model.parameters()`` for every model, shape ``(M, *p.shape)``; a batched forward pass over them (the
bmm layout's training step and every log point's test metrics) and the way back to one ``nn.Module``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh}


def stack_params(models: list[nn.Module], device: torch.device) -> list[torch.Tensor]:
    """Each parameter of every model, stacked along a new first dimension, on ``device``."""
    per_model = [list(m.parameters()) for m in models]
    return [torch.stack([ps[i].detach() for ps in per_model]).to(device) for i in range(len(per_model[0]))]


def load_into(model: nn.Module, params: list[torch.Tensor], index: int) -> nn.Module:
    """``model`` with the weights of model ``index`` of ``params`` (copied to the model's device)."""
    with torch.no_grad():
        for p, stacked in zip(model.parameters(), params, strict=True):
            p.copy_(stacked[index])
    return model


def forward(params: list[torch.Tensor], x: torch.Tensor, activation: str) -> torch.Tensor:
    """``(M, n, outputs)``: every model on the same rows ``x`` (n, inputs), one batched matmul a layer
    (``baddbmm``: bias plus rows × weightᵀ for all models at once)."""
    act = ACTIVATIONS[activation]
    h = x.expand(params[0].shape[0], *x.shape)
    n_layers = len(params) // 2
    for layer in range(n_layers):
        weight, bias = params[2 * layer], params[2 * layer + 1]
        h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        if layer < n_layers - 1:
            h = act(h)
    return h


def per_model_loss(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """``(M,)``: each model's mean loss on the rows, as ``devicelab train``'s loss function computes it."""
    n_models, n = out.shape[0], out.shape[1]
    if task == "classification":
        flat = F.cross_entropy(out.reshape(n_models * n, -1), y.repeat(n_models), reduction="none")
        return flat.view(n_models, n).mean(dim=1)
    return ((out.squeeze(-1) - y) ** 2).mean(dim=1)


def metrics(
    params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, task: str, activation: str, y_scale: float,
    outputs: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:  # fmt: skip
    """``(M, k)`` float32 on the device: each model's test metrics in the order of
    ``devicelab.training.evaluate.METRIC_NAMES[task]`` (no host sync). ``outputs(x)``: the models'
    ``(M, n, outputs)`` when they are not devicelab's MLPs (a user's module)."""
    with torch.inference_mode():
        out = forward(params, x, activation) if outputs is None else outputs(x)
        loss = per_model_loss(out, y, task)
        if task == "classification":
            accuracy = (out.argmax(dim=2) == y).float().mean(dim=1)
            return torch.stack([loss, accuracy], dim=1)
        ss_res = ((out.squeeze(-1) - y) ** 2).sum(dim=1)
        ss_tot = ((y - y.mean()) ** 2).sum()
        return torch.stack([loss, loss.sqrt() * y_scale, 1 - ss_res / ss_tot], dim=1)
