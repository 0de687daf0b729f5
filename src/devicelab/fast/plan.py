"""What the fused CPU kernel can train, read from a workload without importing numba: a ``KernelPlan``
(the model's widths, activation, loss, optimizer and its hyperparameters) or the reason it cannot."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch
from torch import nn

from devicelab.fast.match import MlpMatch, match_mlp
from devicelab.training.config import TrainConfig
from devicelab.training.setup import _FlatMSE
from devicelab.training.workload import Workload

# codes of devicelab.fast.kernel (kept equal there; not imported, so this module does not load numba)
ACTIVATIONS = {"relu": 0, "gelu": 1, "tanh": 2}
CROSS_ENTROPY, MSE = 0, 1
SGD, ADAM, ADAMW = 0, 1, 2

# Above this many FLOPs a step (forward + backward), --fast auto leaves the step to torch's BLAS. The
# kernel runs 20-38 GFLOP/s on one core with no per-step overhead; eager pays ~0.2-0.5 ms of operator
# overhead a step, then runs its matmuls on every core. Measured by benchmarks/fast_crossover.py on a
# busy 2-core EPYC, kernel vs eager on 1 thread: 3.3 MFLOP (Iris, 64-64) 86 vs 454 µs; 12 MFLOP (Iris,
# 128-128) 561 vs 801 µs, but eager on 2 threads 340 µs; 41 MFLOP (digits, 64) 1750 vs 1119 µs; 29
# GFLOP (1024-1024, 4311 rows) 4.1 vs 0.9 s. With eager's matmuls on c cores the break-even is about
# overhead / (1/25 - 1/(30 c)) GFLOP/s: ~8 MFLOP for 2 cores, ~5 for 16; 4 MFLOP leaves a margin.
MAX_STEP_FLOPS = 4e6


@dataclass(frozen=True)
class KernelPlan:
    widths: tuple[int, ...]  # n_inputs, hidden..., n_outputs
    activation: int
    loss: int
    optimizer: int
    lr: float
    momentum: float
    weight_decay: float
    betas: tuple[float, float]
    eps: float
    batch_size: int  # rows per step (n for full batch)

    @property
    def step_flops(self) -> float:
        """Multiply-adds of forward and backward (about 3 matmuls per layer), as FLOPs."""
        pairs = zip(self.widths[:-1], self.widths[1:], strict=True)
        return 6.0 * self.batch_size * sum(i * o for i, o in pairs)


def plan_for(work: Workload, config: TrainConfig) -> tuple[KernelPlan | None, str]:
    """The plan for ``work``, or (None, why the kernel cannot train it), the checks cheapest first."""
    if work.device.type != "cpu":
        return None, f"the fused kernel runs on the CPU, not {work.device}"
    model = work.model
    match = match_mlp(model)  # traced, not by type: the user's own MLP class is one too
    if isinstance(match, str):
        return None, f"{match}, so it is no MLP for the fused kernel"
    if _has_hooks(model):
        return None, "the model has hooks, which the fused kernel would skip"
    widths, activation, why = _layers(model, match)
    if widths is None:
        return None, why
    loss, why = _loss(work.loss_fn, widths[-1])
    if loss is None:
        return None, why
    optimizer, why = _optimizer(work.optimizer, config)
    if optimizer is None:
        return None, why
    n = work.x_train.shape[0]
    if work.x_train.dtype != torch.float32 or any(p.dtype != torch.float32 for p in model.parameters()):
        return None, "the fused kernel trains float32 models and data only"
    why = _targets(work.y_train, loss, widths[-1])
    if why:
        return None, why
    batch = n if config.batch_size is None else min(config.batch_size, n)
    plan = KernelPlan(widths, activation, loss, batch_size=batch, **optimizer)
    if (
        plan.step_flops > MAX_STEP_FLOPS and getattr(config, "fast", "auto") != "on"
    ):  # "on": wherever it applies
        return None, (
            f"{plan.step_flops / 1e6:.0f} MFLOP a step is enough work for torch's BLAS to beat the fused "
            f"kernel (it pays below {MAX_STEP_FLOPS / 1e6:.0f})"
        )
    if importlib.util.find_spec("numba") is None:
        return None, "numba is not installed: pip install numba"
    return (
        plan,
        f"fused numba kernel (MLP {'-'.join(map(str, widths))}, {plan.step_flops / 1e3:.0f} kFLOP a step)",
    )


def _has_hooks(model: nn.Module) -> bool:
    hooks = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    if any(getattr(m, h, None) for m in model.modules() for h in hooks):
        return True
    return any(getattr(p, "_backward_hooks", None) for p in model.parameters())


def _layers(model: nn.Module, match: MlpMatch) -> tuple[tuple[int, ...] | None, int, str]:
    """(widths, activation code, "") of a traced MLP, or (None, 0, why the kernel cannot take it)."""
    if not all(match.biases):
        return None, 0, "a Linear layer without a bias is not fused"
    if len(set(match.activations)) > 1:
        return None, 0, f"mixed activations ({', '.join(match.activations)}) are not fused"
    # the kernel's flat layout: each layer's weight then bias, in the order the forward runs them
    order = [t for m in match.linears for t in (m.weight, m.bias)]
    params = list(model.parameters())
    if len(order) != len(params) or any(a is not b for a, b in zip(order, params, strict=False)):
        return None, 0, "the parameters are not the Linear layers' in the order the forward calls them"
    return match.widths, ACTIVATIONS[match.activation] if match.activations else 0, ""


def _loss(loss_fn: nn.Module, n_outputs: int) -> tuple[int | None, str]:
    if type(loss_fn) is nn.CrossEntropyLoss:
        default = loss_fn.weight is None and loss_fn.label_smoothing == 0 and loss_fn.reduction == "mean"
        return (CROSS_ENTROPY, "") if default else (None, "a weighted or smoothed cross-entropy")
    if type(loss_fn) is _FlatMSE and loss_fn.reduction == "mean" and n_outputs == 1:
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


def _optimizer(optimizer: torch.optim.Optimizer | None, config: TrainConfig) -> tuple[dict | None, str]:
    """The optimizer's hyperparameters as ``KernelPlan`` fields, or (None, why)."""
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
