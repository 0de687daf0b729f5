"""The one plan both fast paths read: ``plan_for(work, config)`` gives a ``FastPlan`` (the model's widths
and activation from ``match_mlp``, the loss, the optimizer and its hyperparameters, the batch) or the
one-line reason no fast path can train ``work``. Each path adds its own checks on top:
``kernel_check`` for the fused CPU kernel (here, without importing numba), ``graph_plan`` for the
captured CUDA step (``devicelab.fast.cuda_graph``).

This module reads a workload by its attributes only and imports nothing from ``devicelab.training``
(which imports the fast paths, not the other way round)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import torch
from torch import nn

from devicelab.fast.codes import ACTIVATIONS, ADAM, ADAMW, CROSS_ENTROPY, MSE, SGD
from devicelab.fast.graph_optim import OptimHyper
from devicelab.fast.match import MlpMatch, has_hooks, match_mlp, step_flops
from devicelab.models import FlatMSE

if TYPE_CHECKING:
    from devicelab.training.config import TrainConfig
    from devicelab.training.workload import Workload

# Above this many FLOPs a step (forward + backward), --fast auto leaves the step to torch's BLAS. The
# kernel runs 20-38 GFLOP/s on one core with no per-step overhead; eager pays ~0.2-0.5 ms of operator
# overhead a step, then runs its matmuls on every core. Measured by benchmarks/fast_crossover.py on a
# busy 2-core EPYC, kernel vs eager on 1 thread: 3.3 MFLOP (Iris, 64-64) 86 vs 454 µs; 12 MFLOP (Iris,
# 128-128) 561 vs 801 µs, but eager on 2 threads 340 µs; 41 MFLOP (digits, 64) 1750 vs 1119 µs; 29
# GFLOP (1024-1024, 4311 rows) 4.1 vs 0.9 s. With eager's matmuls on c cores the break-even is about
# overhead / (1/25 - 1/(30 c)) GFLOP/s: ~8 MFLOP for 2 cores, ~5 for 16; 4 MFLOP leaves a margin.
MAX_STEP_FLOPS = 4e6


@dataclass(frozen=True)
class FastPlan(OptimHyper):
    widths: tuple[int, ...]  # n_inputs, hidden..., n_outputs
    activation: int  # devicelab.fast.codes
    loss: int
    batch_size: int  # rows per step (n for full batch)
    steps_per_epoch: int
    fused: str  # why the fused CPU kernel cannot lay out this MLP's layers ("" when it can)

    @property
    def step_flops(self) -> float:
        return step_flops(sum(i * o for i, o in pairwise(self.widths)), self.batch_size)

    @property
    def n_layers(self) -> int:
        return len(self.widths) - 1


def plan_for(work: Workload, config: TrainConfig) -> tuple[FastPlan | None, str]:
    """The plan for ``work`` on any device, or (None, why no fast path can train it)."""
    model = work.model
    match = match_mlp(model)  # traced, not by type: the user's own MLP class is one too
    if isinstance(match, str):
        return None, f"{match}, so it is no MLP a fast path takes"
    if has_hooks(model):
        return None, "the model has hooks, which a fast path would skip"
    loss, why = _loss(work.loss_fn, match.widths[-1])
    if loss is None:
        return None, why
    hyper, why = optimizer_hyper(work.optimizer, config)
    if hyper is None:
        return None, why
    n = work.x_train.shape[0]
    batch = n if config.batch_size is None else min(config.batch_size, n)
    return FastPlan(
        widths=match.widths,
        activation=ACTIVATIONS.get(match.activation or "relu", 0),
        fused=_layers(model, match),
        loss=loss,
        batch_size=batch,
        steps_per_epoch=-(-n // batch),
        **hyper,
    ), ""


def kernel_check(plan: FastPlan, work: Workload, config: TrainConfig) -> str:
    """Why the fused CPU kernel cannot (or, under ``--fast auto``, should not) train ``work``; ""
    when it can."""
    if work.device.type != "cpu":
        return f"the fused kernel runs on the CPU, not {work.device}"
    if plan.fused:
        return plan.fused
    if work.x_train.dtype != torch.float32 or any(p.dtype != torch.float32 for p in work.model.parameters()):
        return "the fused kernel trains float32 models and data only"
    why = _targets(work.y_train, plan.loss, plan.widths[-1])
    if why:
        return why
    if (
        plan.step_flops > MAX_STEP_FLOPS and getattr(config, "fast", "auto") != "on"
    ):  # on: wherever it applies
        return (
            f"{plan.step_flops / 1e6:.0f} MFLOP a step is enough work for torch's BLAS to beat the fused "
            f"kernel (it pays below {MAX_STEP_FLOPS / 1e6:.0f})"
        )
    if importlib.util.find_spec("numba") is None:
        return "numba is not installed: pip install numba"
    return ""


def kernel_plan(work: Workload, config: TrainConfig) -> tuple[FastPlan | None, str]:
    """The plan the fused CPU kernel runs, or (None, why not); the reason says what it trains."""
    plan, why = plan_for(work, config)
    if plan is not None and work.device.type != "cpu":  # the device first: its reason is the clearest
        return None, f"the fused kernel runs on the CPU, not {work.device}"
    why = why or kernel_check(plan, work, config)
    if why:
        return None, why
    return plan, (
        f"fused numba kernel (MLP {'-'.join(map(str, plan.widths))}, {plan.step_flops / 1e3:.0f} kFLOP a step)"
    )


def _layers(model: nn.Module, match: MlpMatch) -> str:
    """Why the fused kernel cannot take a traced MLP's layers ("" when it can)."""
    if not all(match.biases):
        return "a Linear layer without a bias is not fused"
    if len(set(match.activations)) > 1:
        return f"mixed activations ({', '.join(match.activations)}) are not fused"
    # the kernel's flat layout: each layer's weight then bias, in the order the forward runs them
    order = [t for m in match.linears for t in (m.weight, m.bias)]
    params = list(model.parameters())
    if len(order) != len(params) or any(a is not b for a, b in zip(order, params, strict=False)):
        return "the parameters are not the Linear layers' in the order the forward calls them"
    return ""


def _loss(loss_fn: nn.Module, n_outputs: int) -> tuple[int | None, str]:
    if type(loss_fn) is nn.CrossEntropyLoss:
        default = loss_fn.weight is None and loss_fn.label_smoothing == 0 and loss_fn.reduction == "mean"
        return (CROSS_ENTROPY, "") if default else (None, "a weighted or smoothed cross-entropy")
    if type(loss_fn) is FlatMSE and loss_fn.reduction == "mean" and n_outputs == 1:
        return MSE, ""
    return None, f"the loss {type(loss_fn).__name__} is not fused"


def _targets(y: torch.Tensor, loss: int, n_outputs: int) -> str:
    """Why the targets do not fit the loss ("" when they do). The kernel indexes by class id without
    bounds checks, so ids outside 0..C-1 stay with eager, which raises its own error. (CPU tensors:
    reading min/max is no device sync.)"""
    if loss == MSE:
        return (
            "" if y.dtype == torch.float32 and y.dim() == 1 else "regression targets are not a float32 vector"
        )
    if y.dtype != torch.int64 or y.dim() != 1:
        return "class targets are not an int64 vector"
    ids = y.numpy()  # a view of the CPU tensor: no copy, and no device to wait for
    if len(ids) and not (ids.min() >= 0 and ids.max() < n_outputs):
        return f"class ids outside 0..{n_outputs - 1}"
    return ""


def optimizer_hyper(optimizer: torch.optim.Optimizer | None, config: TrainConfig) -> tuple[dict | None, str]:
    """The optimizer's hyperparameters as ``OptimHyper`` fields, or (None, why)."""
    base = {"momentum": 0.0, "weight_decay": 0.0, "betas": (0.9, 0.999), "eps": 1e-8}
    if optimizer is None:  # plain SGD: the workload's step needs no optimizer object
        return {**base, "optimizer": SGD, "lr": float(config.lr)}, ""
    if len(optimizer.param_groups) != 1:
        return None, "the optimizer has several parameter groups"
    group = optimizer.param_groups[0]
    if group.get("maximize") or group.get("differentiable") or not isinstance(group["lr"], float):
        return None, "maximize, differentiable or a tensor learning rate is not fused"
    kind = type(optimizer)
    if kind is torch.optim.SGD:
        if group["nesterov"] or group["dampening"] != 0:
            return None, "SGD with nesterov or dampening is not fused"
        return {
            **base,
            "optimizer": SGD,
            "lr": group["lr"],
            "momentum": float(group["momentum"]),
            "weight_decay": float(group["weight_decay"]),
        }, ""
    if kind in (torch.optim.Adam, torch.optim.AdamW):
        if group["amsgrad"] or not all(isinstance(b, float) for b in group["betas"]):
            return None, "AMSGrad or tensor betas are not fused"
        # torch 2.x's AdamW is Adam with decoupled_weight_decay; older versions have no such key
        decoupled = kind is torch.optim.AdamW or group.get("decoupled_weight_decay", False)
        return {
            **base,
            "optimizer": ADAMW if decoupled else ADAM,
            "lr": group["lr"],
            "weight_decay": float(group["weight_decay"]),
            "betas": tuple(float(b) for b in group["betas"]),
            "eps": float(group["eps"]),
        }, ""
    return None, f"the optimizer {kind.__name__} is not fused"
