"""Trusting a fast path: a self-check before it trains, and a way back to the eager step if it fails.

``self_check(work, runner)``: before a fast path (the fused CPU kernel, the captured CUDA step) trains a
run, it trains ``SELF_CHECK_EPOCHS`` epochs from a copy of the run's state, and the eager step trains the
same epochs from the same state; the losses and the weights must agree to ``SELF_CHECK_TOL`` (relative),
else the run trains eagerly and says why, with the figures. Everything the check changed is put back, so
the run starts from where it was. The verdict is kept per process and shape: device timing's builds and
the run's, or a second ``train()`` of the same shape, check once (a kept verdict costs nothing, its
``seconds`` 0). What is checked is the arithmetic of the shape, not one workload's tensors: a captured
CUDA graph itself is per workload (``devicelab.fast.cuda_graph.build_runner`` says why).

``Fallback``: the state at the last log point (weights, optimizer state, the shuffle's generator), kept
while a fast path trains; if a replay, or the first read after it, raises, the run goes on from there on
the eager step, nothing lost, and the reason is kept for the summary.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from devicelab.errors import one_line
from devicelab.training.workload import Workload

SELF_CHECK_EPOCHS = 3
# float32 sums in another order: the fast paths match eager to ~1e-6 relative after a few epochs (tests:
# 1e-5 over whole runs); 1e-4 leaves room for that and still catches a wrong step, which is off by far more
SELF_CHECK_TOL = 1e-4

_verdicts: dict[tuple, SelfCheck] = {}  # (runner type, device, plan, rows) -> its check, once per process


@dataclass(frozen=True)
class SelfCheck:
    epochs: int
    max_loss_diff: float  # the largest relative difference of an epoch's loss, fast vs eager
    max_weight_diff: float  # the largest relative difference of a weight, fast vs eager, after the epochs
    passed: bool
    seconds: float = 0.0  # what this check cost now (0: the verdict was kept from this process's first check)

    def to_dict(self) -> dict:
        return {
            "epochs": self.epochs,
            "max_loss_diff": self.max_loss_diff,
            "max_weight_diff": self.max_weight_diff,
            "passed": self.passed,
        }

    @property
    def figures(self) -> str:
        return (
            f"{self.epochs} epochs: losses differ by up to {self.max_loss_diff:.2g}, weights by up to "
            f"{self.max_weight_diff:.2g} (relative; allowed {SELF_CHECK_TOL:g})"
        )


@dataclass
class State:
    """A run's state on its device: weights, optimizer state, the shuffle's and torch's RNG."""

    weights: dict[str, torch.Tensor]
    optimizer: dict | None
    shuffle: torch.Tensor
    cpu_rng: torch.Tensor

    @classmethod
    def of(cls, work: Workload) -> State:
        """Device copies (no host sync)."""
        weights = {k: v.detach().clone() for k, v in work.model.state_dict().items()}
        optimizer = copy.deepcopy(work.optimizer.state_dict()) if work.optimizer is not None else None
        return cls(weights, optimizer, work.generator.get_state(), torch.get_rng_state())

    def put_back(self, work: Workload) -> None:
        with torch.no_grad():
            for key, value in work.model.state_dict().items():
                value.copy_(self.weights[key])
        if work.optimizer is not None:
            work.optimizer.load_state_dict(copy.deepcopy(self.optimizer))
        work.generator.set_state(self.shuffle)
        torch.set_rng_state(self.cpu_rng)


def self_check(work: Workload, runner, key: tuple | None = None) -> SelfCheck:
    """``runner`` against the eager step for ``SELF_CHECK_EPOCHS`` epochs (or the runner's
    ``check_epochs``: a CUDA graph of K epochs is checked over K + 1), each from a copy of the state the
    runner has loaded; the state and the loss slots are put back afterwards and the runner loads them
    again. ``key``: this shape's process-wide cache key (None: always check)."""
    if key is not None and key in _verdicts:
        return replace(_verdicts[key], seconds=0.0)  # nothing ran now: no cost in this runner's setup_s
    began = time.perf_counter()
    start = 0  # the loss slots the check borrows (the epoch index changes nothing else)
    stop = min(getattr(runner, "check_epochs", SELF_CHECK_EPOCHS), work.losses.numel())
    state, slots = State.of(work), work.losses[start:stop].clone()
    try:
        runner.run(start, stop, _never)
        runner.sync_module()
        fast_losses, fast_weights = work.losses[start:stop].clone(), _weights(work)
        state.put_back(work)
        for epoch in range(start, stop):
            work.run_epoch(epoch)
        # sync: the check reads both runs' losses and weights to the host, once, at setup
        loss_diff = _relative(fast_losses, work.losses[start:stop])
        weight_diff = max(_relative(f, e) for f, e in zip(fast_weights, _weights(work), strict=True))
    finally:
        state.put_back(work)
        work.losses[start:stop] = slots
        runner.load_module()
    passed = loss_diff <= SELF_CHECK_TOL and weight_diff <= SELF_CHECK_TOL
    check = SelfCheck(stop - start, loss_diff, weight_diff, passed, time.perf_counter() - began)
    if key is not None:
        _verdicts[key] = check
    return check


def _weights(work: Workload) -> list[torch.Tensor]:
    return [p.detach().clone() for p in work.model.parameters()]


def _relative(fast: torch.Tensor, eager: torch.Tensor) -> float:
    """max |fast - eager| / max |eager|; where both are NaN/inf alike they agree; otherwise inf."""
    a, b = fast.detach().double().cpu().numpy(), eager.detach().double().cpu().numpy()  # sync (setup only)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if not (np.isfinite(a) | same).all() or not (np.isfinite(b) | same).all():
        return float("inf")
    finite = np.isfinite(a) & np.isfinite(b)
    if not finite.any():
        return 0.0
    scale = max(float(np.abs(b[finite]).max()), 1e-12)
    return float(np.abs(a[finite] - b[finite]).max()) / scale


def _never() -> bool:
    return False


class Fallback:
    """The last log point's state while a fast path trains, and the way back to the eager step. A runner
    that updates the module in place between log points (the CUDA graph) keeps its own copy
    (``runner.mark()``/``runner.restore()``: a few device copies a log point, no sync); one that does not
    (the fused kernel: the module changes only at ``sync_module``) needs none. The shuffle's generator is
    kept here."""

    def __init__(self, work: Workload, runner) -> None:
        self.work, self.runner = work, runner
        self.shuffle: torch.Tensor | None = None
        self.reason = ""

    def mark(self) -> None:
        """Keep the state now (at a log point, after the runner wrote it back)."""
        self.shuffle = self.work.generator.get_state()
        if hasattr(self.runner, "mark"):
            self.runner.mark()

    def recover(self, error: BaseException, start: int, stop: int):
        """The eager runner, with the state of the last log point put back; the reason says what failed."""
        from devicelab.training.runner import EagerRunner

        if hasattr(self.runner, "restore"):
            self.runner.restore()
        if self.shuffle is not None:
            self.work.generator.set_state(self.shuffle)
        self.reason = (
            f"the {self.runner.name} path failed in epochs {start + 1}-{stop} ({one_line(error)}); "
            f"continued on the eager step from epoch {start}"
        )
        return EagerRunner(self.work, reason=self.reason)
