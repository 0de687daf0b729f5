"""torch.optim's SGD, Adam and AdamW written as the torch ops they run, over lists of tensors, with no
host sync and no Python branch on a value on the device, so that a CUDA graph can hold them
(``devicelab.fast.cuda_graph``) and the CPU can run them uncaptured against torch's own optimizers.

The ops are torch's defaults on each device, so that the losses match the eager step's: the foreach
code on CUDA, the per-tensor code on the CPU (the same formulas; their last Adam op rounds differently).
What torch computes on the host each step, Adam's bias corrections from its step count, comes from a
table on the device indexed by a device step counter (``adam_table``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from devicelab.fast.codes import ADAMW

MAX_TABLE_ROWS = 1 << 20  # Adam's per-step numbers (8 bytes a row); beyond, the last row is used


@dataclass(frozen=True)
class OptimHyper:
    optimizer: int  # SGD, ADAM or ADAMW (devicelab.fast.codes)
    lr: float
    momentum: float
    weight_decay: float
    betas: tuple[float, float]
    eps: float


def sgd_update(
    params: list[torch.Tensor], grads: list[torch.Tensor], bufs: list[torch.Tensor], plan: OptimHyper
) -> None:
    """torch.optim.SGD's foreach update (dampening 0, no nesterov) with its momentum buffers always
    present: a zero buffer's first update ``0 * momentum + grad`` is exactly torch's ``grad.clone()``."""
    if plan.weight_decay != 0:
        grads = list(torch._foreach_add(grads, params, alpha=plan.weight_decay))
    if plan.momentum != 0:
        torch._foreach_mul_(bufs, plan.momentum)
        torch._foreach_add_(bufs, grads, alpha=1.0)  # alpha = 1 - dampening
        grads = bufs
    torch._foreach_add_(params, grads, alpha=-plan.lr)


def adam_table(plan: OptimHyper, device: torch.device) -> torch.Tensor:
    """Row ``t``: the two numbers torch's (non-capturable) Adam computes on the host for step ``t``,
    ``sqrt(1 - beta2**t)`` and ``-lr / (1 - beta1**t)``, with its float64 expressions, stored as the
    float32 its kernels round them to. The rows stop where both have reached their limit (1 and -lr in
    float32; ~17k steps for the default betas) and the step counter is clamped to the last row."""
    beta1, beta2 = plan.betas
    rows = [(1.0, -plan.lr)]  # row 0: steps count from 1
    limit = (float(np.float32(1.0)), float(np.float32(-plan.lr)))
    while len(rows) < MAX_TABLE_ROWS:
        step = float(len(rows))  # torch reads the step as a Python float
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        row = (bias_correction2**0.5, (plan.lr / bias_correction1) * -1)
        rows.append(row)
        if (float(np.float32(row[0])), float(np.float32(row[1]))) == limit:
            break
    return torch.tensor(rows, dtype=torch.float32, device=device)  # (a copy to the device: setup only)


def _adam_start(params, grads, exp_avgs, exp_avg_sqs, plan: OptimHyper) -> list[torch.Tensor]:
    """The part of Adam/AdamW that needs no step count (the same ops per tensor and foreach)."""
    beta1, beta2 = plan.betas
    if plan.weight_decay != 0:
        if plan.optimizer == ADAMW:
            torch._foreach_mul_(params, 1 - plan.lr * plan.weight_decay)
        else:
            grads = list(torch._foreach_add(grads, params, alpha=plan.weight_decay))
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    return grads


def adam_per_tensor(params, grads, exp_avgs, exp_avg_sqs, numbers: torch.Tensor, plan: OptimHyper) -> None:
    """torch's ``_single_tensor_adam`` (its CPU default), bit for bit: ``denom = sqrt(v) / bc2_sqrt + eps``
    then ``addcdiv_(m, denom, value=-step_size)``, whose kernel computes ``p + (value * m) / denom``."""
    _adam_start(params, grads, exp_avgs, exp_avg_sqs, plan)
    bc2_sqrt, neg_step_size = numbers[:, 0], numbers[:, 1]
    for p, m, v in zip(params, exp_avgs, exp_avg_sqs, strict=True):
        denom = (v.sqrt() / bc2_sqrt).add_(plan.eps)
        p.add_((m * neg_step_size).div_(denom))


def adam_foreach(params, grads, exp_avgs, exp_avg_sqs, numbers: torch.Tensor, plan: OptimHyper) -> None:
    """torch's ``_multi_tensor_adam`` (its CUDA default): its last op, ``_foreach_addcdiv_`` with a list
    of step sizes, computes ``p + s * (m / d)`` in float32, which the CUDA compiler fuses into one
    ``fma(s, m / d, p)``. A device ``s`` has no such op: the fma is done in float64 (``s * (m / d)`` is
    exact there, one rounding of the sum to float64 and one to float32)."""
    _adam_start(params, grads, exp_avgs, exp_avg_sqs, plan)
    bc2_sqrt, neg_step_size = numbers[0, 0], numbers[0, 1]
    denom = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_div_(denom, bc2_sqrt)
    torch._foreach_add_(denom, plan.eps)
    ratio = torch._foreach_div(exp_avgs, denom)
    step64 = neg_step_size.double()
    for p, r in zip(params, ratio, strict=True):
        p.copy_(torch.addcmul(p.double(), r.double(), step64))
