"""Many MLPs of one shape as stacked tensors: ``params[i]`` is the ``i``-th tensor of
``model.parameters()`` for every model, shape ``(M, *p.shape)``; a batched forward pass over them (the
bmm layout's training step and every log point's test metrics) and the way back to one ``nn.Module``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from devicelab.training.outputs import class_scores, single_logit

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


def n_codes(model: nn.Module) -> int:
    """How many trailing input columns ``model`` embeds (a ``TabularMLP``'s category codes; 0: an MLP)."""
    return int(getattr(model, "n_codes", 0))


def forward(params: list[torch.Tensor], x: torch.Tensor, activation: str, codes: int = 0) -> torch.Tensor:
    """``(M, n, outputs)``: every model on the same rows ``x`` (n, inputs), one batched matmul a layer
    (``baddbmm``: bias plus rows × weightᵀ for all models at once). ``codes``: the last ``codes`` columns
    of ``x`` are category codes and ``params[:codes]`` their embedding tables ``(M, slots, width)``, looked
    up and put after the other columns, as ``devicelab.models.TabularMLP`` does."""
    act = ACTIVATIONS[activation]
    n_models = params[0].shape[0]
    h = x[:, : x.shape[1] - codes].expand(n_models, x.shape[0], x.shape[1] - codes)
    if codes:
        ids = x[:, x.shape[1] - codes :].long()
        looked_up = [table[:, ids[:, i]] for i, table in enumerate(params[:codes])]  # (M, n, width) each
        h = torch.cat([h, *looked_up], dim=2)
    mlp = params[codes:]
    n_layers = len(mlp) // 2
    for layer in range(n_layers):
        weight, bias = mlp[2 * layer], mlp[2 * layer + 1]
        h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        if layer < n_layers - 1:
            h = act(h)
    return h


def per_row_loss(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """``(M, n)``: each model's loss on each row (cross-entropy, binary cross-entropy where a user's module
    gives one logit a row for two classes, or the squared error)."""
    n_models, n = out.shape[0], out.shape[1]
    if task == "classification" and single_logit(tuple(out.shape[1:]), 2):  # one logit a row: two classes
        logits = out.reshape(n_models, n)
        return F.binary_cross_entropy_with_logits(
            logits, y.to(logits.dtype).expand(n_models, n), reduction="none"
        )
    if task == "classification":
        flat = F.cross_entropy(out.reshape(n_models * n, -1), y.repeat(n_models), reduction="none")
        return flat.view(n_models, n)
    return (out.squeeze(-1) - y) ** 2


def per_model_loss(
    out: torch.Tensor, y: torch.Tensor, task: str, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """``(M,)``: each model's mean loss on the rows, as ``devicelab train``'s loss function computes it.
    ``weights`` ``(M, n)``: 1 for the rows a model trains on, 0 for the others (cross-validation folds):
    its mean over its own rows, exactly the loss of training on those rows alone."""
    rows = per_row_loss(out, y, task)
    if weights is None:
        return rows.mean(dim=1)
    return (rows * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


def metrics(
    params: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    task: str,
    activation: str,
    y_scale: float,
    codes: int = 0,
    inverse=None,
    outputs: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``(M, k)`` float32 on the device: each model's test metrics in the order of
    ``devicelab.training.evaluate.METRIC_NAMES[task]`` (no host sync); RMSE and R² in the target's units
    as ``evaluate`` computes them (``y_scale``, ``inverse``: devicelab.training.units). ``outputs(x)``: the
    models' ``(M, n, outputs)`` when they are not devicelab's MLPs (a user's module)."""
    with torch.inference_mode():
        out = forward(params, x, activation, codes) if outputs is None else outputs(x)
        loss = per_model_loss(out, y, task)
        if task == "classification":
            accuracy = (class_scores(out, class_dim=2).argmax(dim=2) == y).float().mean(dim=1)
            return torch.stack([loss, accuracy], dim=1)
        pred = out.squeeze(-1)
        if inverse is not None:  # a non-affine target transform: the metrics after its inverse
            pred, y = inverse(pred), inverse(y)
        ss_res = ((pred - y) ** 2).sum(dim=1)
        ss_tot = ((y - y.mean()) ** 2).sum()
        rmse = (ss_res / y.numel()).sqrt() * y_scale
        return torch.stack([loss, rmse, 1 - ss_res / ss_tot], dim=1)
