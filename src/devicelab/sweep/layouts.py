"""The two ways a group of same-shaped models trains together; both keep every model's epoch losses in
one ``(M, epochs)`` buffer and read nothing back to the host.

* ``NumbaModels`` (CPU): devicelab.sweep.kernel, the models side by side in SIMD lanes, ~2 µs per
  model-epoch on the seed workload (one core);
* ``BmmModels`` (any device, the GPU's layout): stacked weights, one ``baddbmm`` per layer for all the
  models, autograd for the gradients and torch.optim's update formulas with a learning rate per model.

Both draw each mini-batch epoch's row order as ``devicelab train`` does (one ``randperm`` an epoch from
the split-seeded generator), so every model sees the batches its single run would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from devicelab.fast.codes import ACTIVATIONS, LOSSES, OPTIMIZERS
from devicelab.sweep import stack
from devicelab.training.config import TrainConfig


class Buffers:
    """Optimizer state of every model, stacked like the parameters: SGD's momentum buffers (``first``),
    Adam's exp_avg (``first``) and exp_avg_sq (``second``); ``steps`` updates taken so far."""

    def __init__(self, first: list[torch.Tensor], second: list[torch.Tensor], steps: int) -> None:
        self.first, self.second, self.steps = first, second, steps


class NumbaModels:
    name = "numba"

    def __init__(
        self, models, lrs, config: TrainConfig, x, y, task, generator, n_epochs, row_weights=None
    ) -> None:
        """``row_weights``: as BmmModels' (``(M, n)`` 0/1, the rows each model trains on); None: all."""
        from devicelab.sweep import kernel

        self._kernel = kernel
        self.config, self.generator, self.n_models = config, generator, len(models)
        self.shapes = [p.shape for p in models[0].parameters()]
        self.bounds = np.cumsum([0, *(int(np.prod(s)) for s in self.shapes)])
        self.tile, padded = kernel.tiling(len(models))
        columns = [torch.nn.utils.parameters_to_vector(m.parameters()).detach().numpy() for m in models]
        columns += [columns[0]] * (padded - len(models))  # padding: copies of the first model, dropped
        self.theta = np.ascontiguousarray(np.stack(columns, axis=1), dtype=np.float32)
        self.buf1, self.buf2 = np.zeros_like(self.theta), np.zeros_like(self.theta)
        self.hyper = np.zeros((padded, 6))
        self.hyper[: len(lrs), 0] = lrs
        self.hyper[len(lrs) :, 0] = lrs[0]
        self.hyper[:, 1:] = (config.momentum, config.weight_decay, 0.9, 0.999, 1e-8)  # torch's Adam defaults
        self.widths = np.array(
            [models[0].spec["n_inputs"], *config.hidden, models[0].spec["n_outputs"]], np.int64
        )
        self.x = np.ascontiguousarray(x.numpy(), dtype=np.float32)
        weights = np.ones((self.x.shape[0], padded), np.float32)  # (rows, models): the kernel's layout
        if row_weights is not None:
            weights[:, : len(models)] = row_weights.numpy().T
            weights[:, len(models) :] = weights[:, :1]  # the padding copies the first model
        self.weights = weights
        classify = task == "classification"
        self.y_class = np.ascontiguousarray(y.numpy(), np.int64) if classify else np.zeros(0, np.int64)
        self.y_value = np.zeros(0, np.float32) if classify else np.ascontiguousarray(y.numpy(), np.float32)
        self.codes = (ACTIVATIONS[config.activation], LOSSES[task], OPTIMIZERS[config.optimizer])
        self.n = self.x.shape[0]
        self.batch = config.batch_size if config.batch_size and config.batch_size < self.n else self.n
        self.steps_per_epoch = -(-self.n // self.batch)
        self.steps = 0
        self._losses = np.zeros((padded, n_epochs), np.float32)
        self.losses = torch.from_numpy(self._losses[: len(models)])  # a view: the kernel writes into it

    def run(self, start: int, count: int) -> None:
        if self.batch < self.n:  # the draws devicelab train makes from the same generator, one an epoch
            perms = torch.stack([torch.randperm(self.n, generator=self.generator) for _ in range(count)])
            perms = perms.numpy()
        else:
            perms = np.zeros((0, 0), np.int64)
        self._kernel.train_models(
            self.theta, self.buf1, self.buf2, self.widths, self.x, self.y_class, self.y_value, perms,
            self.batch, self._losses[:, start : start + count], *self.codes, self.hyper, self.steps, self.tile,
            self.weights,
        )  # fmt: skip
        self.steps += count * self.steps_per_epoch

    def params(self) -> list[torch.Tensor]:
        return self._stacked(self.theta)

    def buffers(self) -> Buffers:
        return Buffers(self._stacked(self.buf1), self._stacked(self.buf2), self.steps)

    def _stacked(self, flat: np.ndarray) -> list[torch.Tensor]:
        m = self.n_models
        return [
            torch.from_numpy(np.ascontiguousarray(flat[a:b, :m].T).reshape(m, *shape))
            for shape, a, b in zip(self.shapes, self.bounds[:-1], self.bounds[1:], strict=True)
        ]


class BmmModels:
    name = "bmm"

    def __init__(
        self, models, lrs, config: TrainConfig, x, y, task, generator, n_epochs, row_weights=None
    ) -> None:
        """``row_weights``: ``(M, n)`` 0/1 per model and row, the rows each model trains on (the folds of
        cross-validation, devicelab.training.cv); None: every model trains on every row."""
        self.row_weights = row_weights
        self.config, self.task, self.generator = config, task, generator
        self.x, self.y, device = x, y, x.device
        self.codes = stack.n_codes(models[0])  # embedded category columns (a TabularMLP's tables first)
        self._params = [p.requires_grad_() for p in stack.stack_params(models, device)]
        wide = torch.float64 if device.type in ("cpu", "cuda") else torch.float32  # MPS has no float64
        lr = torch.tensor(lrs, dtype=wide, device=device)
        self.lr = [lr.view(-1, *([1] * (p.dim() - 1))) for p in self._params]  # broadcast per model
        self.first = [torch.zeros_like(p) for p in self._params]
        self.second = [torch.zeros_like(p) for p in self._params]
        self.steps = 0
        self.losses = torch.zeros(len(models), n_epochs, device=device)
        n = x.shape[0]
        self.batch = config.batch_size if config.batch_size and config.batch_size < n else n
        starts = range(0, n, self.batch)
        self.starts = list(starts)
        self.batch_losses = torch.zeros(len(models), len(starts), device=device)
        self.weights = torch.tensor([min(self.batch, n - s) / n for s in starts], device=device)

    def run(self, start: int, count: int) -> None:
        n = self.x.shape[0]
        for epoch in range(start, start + count):
            if self.batch >= n:
                self.losses[:, epoch] = self._step(self.x, self.y, self.row_weights)
                continue
            order = torch.randperm(n, device=self.x.device, generator=self.generator)
            for j, first in enumerate(self.starts):
                rows = order[first : first + self.batch]
                weights = None if self.row_weights is None else self.row_weights.index_select(1, rows)
                self.batch_losses[:, j] = self._step(
                    self.x.index_select(0, rows), self.y.index_select(0, rows), weights
                )
            self.losses[:, epoch] = self.batch_losses @ self.weights  # stays on the device

    def _step(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """One update of every model; returns their losses (M,), on the device."""
        out = stack.forward(self._params, x, self.config.activation, self.codes)
        losses = stack.per_model_loss(out, y, self.task, weights)
        # the models' losses are independent, so the gradient of their sum is each one's own gradient
        grads = torch.autograd.grad(losses.sum(), self._params)
        self.steps += 1
        with torch.no_grad():
            update = _adam if self.config.optimizer in ("adam", "adamw") else _sgd
            for p, g, lr, first, second in zip(
                self._params, grads, self.lr, self.first, self.second, strict=True
            ):
                update(self.config, p, g, lr, first, second, self.steps)
        return losses.detach()

    def params(self) -> list[torch.Tensor]:
        return [p.detach() for p in self._params]

    def buffers(self) -> Buffers:
        return Buffers(self.first, self.second, self.steps)


def _sgd(config: TrainConfig, p, g, lr, buf, _unused, step: int) -> None:
    """torch.optim.SGD's single-tensor update (weight decay, momentum without dampening or Nesterov)."""
    if config.weight_decay:
        g = g.add(p, alpha=config.weight_decay)
    if config.momentum:
        buf.mul_(config.momentum).add_(g)  # a zero buffer times momentum plus g is g: torch's first step
        g = buf
    p.addcmul_(g, (-lr).float())  # p + (-lr) * g, torch's p.add_(g, alpha=-lr) in float32


def _adam(config: TrainConfig, p, g, lr, exp_avg, exp_avg_sq, step: int) -> None:
    """torch.optim.Adam's / AdamW's update with a learning rate per model: its single-tensor form on the
    CPU, its foreach form (the default there) on CUDA, so that each model equals its own train run."""
    beta1, beta2, eps, wd = 0.9, 0.999, 1e-8, config.weight_decay
    if wd and config.optimizer == "adamw":
        p.mul_((1 - lr * wd).float())
    elif wd:
        g = g.add(p, alpha=wd)
    exp_avg.lerp_(g, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    step_size = (lr / (1 - beta1**step)).float()
    denom = (exp_avg_sq.sqrt() / ((1 - beta2**step) ** 0.5)).add_(eps)
    if p.device.type == "cuda":
        # torch's foreach Adam, train's default on CUDA: its last op computes fma(-s, m / d, p) in float32;
        # the same in float64 (the product of two float32 is exact there), as fast.graph_optim.adam_foreach
        p.copy_(torch.addcmul(p.double(), (exp_avg / denom).double(), (-step_size).double()))
    else:
        p.addcmul_(exp_avg / denom, -step_size)  # p.addcdiv_(exp_avg, denom, value=-step_size)


LAYOUTS = {"numba": NumbaModels, "bmm": BmmModels}


def check_layout(requested: str, device: torch.device, embedded: int = 0) -> None:
    """A UserError for a --layout that cannot train this sweep (before anything is trained)."""
    from devicelab.errors import UserError

    if requested == "numba" and device.type != "cpu":
        raise UserError(f"--layout numba runs on the CPU, not {device}", hint="use --layout bmm or auto")
    if requested == "numba" and embedded:
        raise UserError(
            f"--layout numba trains plain MLPs, and this data embeds categories of more than 30 levels "
            f"({embedded} columns)",
            hint="use --layout bmm or auto (batched matmuls, with the embeddings)",
        )


def choose_layout(requested: str, device: torch.device, embedded: int = 0) -> tuple[str, str]:
    """``(layout, why)``: numba on the CPU when it imports, else the batched matmuls. ``embedded``: the
    data's embedded category columns, which the numba kernel (plain MLPs) does not take."""
    check_layout(requested, device, embedded)
    if requested != "auto":
        return requested, f"--layout {requested}"
    if embedded:
        return "bmm", f"batched matmuls (baddbmm) on {device}: the numba kernel takes no embeddings"
    if device.type != "cpu":
        return "bmm", f"batched matmuls (baddbmm) on {device}"
    try:
        from devicelab.sweep import kernel  # noqa: F401 (compiles, or loads numba's disk cache)
    except Exception as error:  # a broken numba install: the torch layout still trains, just slower
        return "bmm", f"batched matmuls: numba could not compile the kernel ({type(error).__name__})"
    return "numba", "numba kernel, the models side by side in SIMD lanes"


def make_models(layout: str, models: list[nn.Module], lrs, config, x, y, task, generator, n_epochs):
    return LAYOUTS[layout](models, np.asarray(lrs, np.float64), config, x, y, task, generator, n_epochs)
