"""The "numba" runner: epochs between log points in the fused CPU kernel, in chunks of a few
milliseconds, with the weights and optimizer state in flat float32 arrays in between.

``cpu_fast_runner(work, config)`` is the selector: the runner, or None and why the eager step stays.
Everything is on the CPU, so nothing here ever waits for a device: ``work.losses.numpy()`` is the
loss buffer itself, and the kernel writes each epoch's loss straight into it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from devicelab.fast.optim_state import read_state, write_state
from devicelab.fast.plan import FastPlan, kernel_plan, optimizer_hyper

if TYPE_CHECKING:
    from devicelab.training.config import TrainConfig
    from devicelab.training.runner import Runner
    from devicelab.training.workload import Workload

CHUNK_S = 0.02  # kernel time between two should_stop() checks (Ctrl-C answers within this)


def cpu_fast_runner(work: Workload, config: TrainConfig) -> tuple[Runner | None, str]:
    """The fused-kernel runner for ``work`` (compiling the kernel, or loading it from numba's disk
    cache, is timed as ``runner.setup_s``), or (None, the one-line reason the eager step runs)."""
    plan, why = kernel_plan(work, config)
    if plan is None:
        return None, why
    started = time.perf_counter()
    try:
        from devicelab.fast import kernel  # compiles on the first import, later loads numba's cache
    except Exception as error:  # a broken numba/llvmlite install: train on eager, say why in one line
        return None, f"numba could not compile the kernel ({type(error).__name__}: {str(error)[:100]})"
    runner = NumbaRunner(work, config, plan, kernel.train_epochs)
    runner.setup_s = time.perf_counter() - started
    return runner, why


class NumbaRunner:
    """Trains ``work`` with ``train_epochs``; ``sync_module``/``load_module`` move weights and optimizer
    state between its flat arrays and the module/optimizer, in torch's own state format."""

    name = "numba"

    def __init__(self, work: Workload, config: TrainConfig, plan: FastPlan, train_epochs: Callable) -> None:
        self.work, self.config, self.plan, self._train = work, config, plan, train_epochs
        self.setup_s = 0.0
        self.self_check = None  # set by training.runner.select_runner once it has checked this path
        self.params = list(work.model.parameters())
        sizes = [p.numel() for p in self.params]
        self.bounds = np.cumsum([0, *sizes])
        total = int(self.bounds[-1])
        self.theta = np.zeros(total, np.float32)
        self.buf1 = np.zeros(total, np.float32)  # momentum buffer / exp_avg
        self.buf2 = np.zeros(total, np.float32)  # exp_avg_sq
        self.grad = np.zeros(total, np.float32)
        self.first, self.second = self._tensors(self.buf1), self._tensors(self.buf2)  # torch views
        self.steps = 0  # optimizer steps taken (Adam's "step")
        self.widths = np.array(plan.widths, np.int64)
        self.x = np.ascontiguousarray(work.x_train.numpy(), dtype=np.float32)
        y = work.y_train.numpy()
        classify = y.dtype.kind in "iu"
        self.y_class = np.ascontiguousarray(y, np.int64) if classify else np.zeros(0, np.int64)
        self.y_value = np.zeros(0, np.float32) if classify else np.ascontiguousarray(y, np.float32)
        self.losses = work.losses.numpy()  # shares memory with work.losses (CPU)
        self.n = self.x.shape[0]
        self.full = plan.batch_size >= self.n
        self.steps_per_epoch = 1 if self.full else -(-self.n // plan.batch_size)
        self.no_perms = np.zeros((0, 0), np.int64)
        # epochs per kernel call: a first guess at ~20 GFLOP/s, then aimed at CHUNK_S by run()
        self.chunk = int(min(max(CHUNK_S * 2e10 / (plan.step_flops * self.steps_per_epoch), 1), 1024))
        self.hyper = np.zeros(6, np.float64)
        self.load_module()

    def run(self, start: int, stop: int, should_stop: Callable[[], bool]) -> int:
        epoch = start
        while epoch < stop:
            count = min(self.chunk, stop - epoch)
            began = time.perf_counter()
            self._epochs(epoch, count)
            spent = time.perf_counter() - began
            epoch += count
            if count == self.chunk:  # aim the next chunk at CHUNK_S
                self.chunk = int(min(max(count * CHUNK_S / max(spent, 1e-6), 1), 2 * count, 1 << 16))
            if should_stop():
                break
        return epoch

    def _epochs(self, epoch: int, count: int) -> None:
        if self.full:
            perms = self.no_perms
        else:  # the same draws from the same generator as the eager epochs, one randperm an epoch
            gen = self.work.generator
            perms = torch.stack([torch.randperm(self.n, generator=gen) for _ in range(count)]).numpy()
        plan = self.plan
        self._train(
            self.theta, self.buf1, self.buf2, self.grad, self.widths, self.x, self.y_class, self.y_value,
            perms, plan.batch_size, self.losses[epoch : epoch + count], plan.activation, plan.loss,
            plan.optimizer, self.hyper, self.steps,
        )  # fmt: skip
        self.steps += count * self.steps_per_epoch

    def sync_module(self) -> None:
        # numpy writes into the tensors' own memory (CPU: no copy to a device, no sync): ~1 µs each, where
        # a torch op costs several µs, and tens of µs on a busy machine with several intra-op threads.
        # Like ``param.data.copy_``, this does not bump autograd's version counter.
        for p, values in zip(self.params, self._split(self.theta), strict=True):
            p.detach().numpy()[...] = values
        plan = self.plan
        write_state(
            self.work.optimizer, self.params, plan.optimizer, plan.momentum, self.steps,
            self.first, self.second,
        )  # fmt: skip

    def load_module(self) -> None:
        for p, values in zip(self.params, self._split(self.theta), strict=True):
            values[...] = p.detach().numpy()
        optimizer = self.work.optimizer
        if optimizer is not None:
            hyper, _ = optimizer_hyper(optimizer, self.config)  # resume may have restored param_groups
            if hyper is not None:
                self.plan = replace(self.plan, **hyper)
        self.steps = read_state(optimizer, self.params, self.first, self.second)
        plan = self.plan
        self.hyper[:] = (plan.lr, plan.momentum, plan.weight_decay, *plan.betas, plan.eps)

    def _tensors(self, flat: np.ndarray) -> list[torch.Tensor]:
        """CPU tensors over ``flat``'s memory, shaped like each parameter (no copy)."""
        return [torch.from_numpy(v) for v in self._split(flat)]

    def _split(self, flat: np.ndarray) -> list[np.ndarray]:
        """Views of ``flat`` shaped like each parameter."""
        return [
            flat[a:b].reshape(p.shape)
            for p, a, b in zip(self.params, self.bounds[:-1], self.bounds[1:], strict=True)
        ]
