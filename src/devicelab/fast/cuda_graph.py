"""The "cuda-graph" runner: the whole training step (forward, loss, backward, optimizer update, the
loss written into the loss buffer) captured in a CUDA graph and replayed, several epochs a replay.

``cuda_graph_runner(work, config)`` is the selector: the runner, or None and the one-line reason the
eager step stays. What a graph holds (PyTorch CUDA semantics notes, "whole network capture"):

  * the step written with torch ops over the module's own parameters, updated in place, so the
    weights never leave ``work.model``; gradients from ``torch.autograd.grad``; the optimizer as
    the very ops of torch's default SGD/Adam/AdamW on that device (foreach on CUDA, per tensor on the
    CPU; ``devicelab.fast.graph_optim``), its state in static tensors here. Adam's two step-dependent
    numbers, which torch computes on the host in float64 each step, come from a table indexed by a
    device step counter, so the captured update is torch's own, not its float32 ``capturable``
    variant (whose rounding drifts from the eager run by 1e-3 in 2000 mini-batch epochs);
  * the epoch index as a device tensor: ``losses.index_copy_(0, idx, loss)`` then ``idx += 1``, so the
    graph itself writes each epoch's loss where the eager epoch would;
  * ``K`` epochs unrolled in one capture (full batch: up to 20), and a one-epoch graph for the epochs
    left before a log point; a mini-batch epoch indexes a device permutation (drawn outside the graph,
    before each replay, from ``work.generator`` exactly as the eager epoch draws it) and its ragged
    last batch is one more unrolled step of its own shape.

The same functions run uncaptured (``run_uncaptured``, ``devicelab.fast.capture``) on any device: that
is how the CPU tests check this arithmetic against the eager step, and what a failed re-capture falls
back to. Nothing in ``run()`` waits for the device (replays, ``fill_`` with a Python number and the
permutation draws are queued work); capture synchronizes (``torch.cuda.graph`` does), once, at setup.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import torch

from devicelab.errors import one_line
from devicelab.fast.capture import Capture, Graph, capture_cuda_graph, run_uncaptured
from devicelab.fast.codes import SGD
from devicelab.fast.graph_optim import adam_foreach, adam_per_tensor, adam_table, sgd_update
from devicelab.fast.optim_state import read_state, write_state
from devicelab.fast.plan import FastPlan, optimizer_hyper, plan_for

if TYPE_CHECKING:
    from devicelab.training.config import TrainConfig
    from devicelab.training.runner import Runner
    from devicelab.training.workload import Workload

MAX_EPOCHS_PER_GRAPH = 20  # full batch: epochs unrolled in one capture (~20 graph nodes each on the seed MLP)
MAX_STEPS_PER_GRAPH = 64  # mini-batch: whole epochs unrolled up to this many steps a capture
MAX_STEPS_PER_EPOCH = 256  # an epoch of more mini-batches is not unrolled (capture would take too long)
WARMUP_EPOCHS = 3  # on the capture stream before capture (cuBLAS handles and workspaces, autograd threads)

# When capture stops paying, without measuring: a graph removes the launch cost of each kernel of a
# step. Eager pays ~5 µs of dispatch and launch for each of a step's ~10 kernels a layer (design.md:
# 0.2-0.5 ms a step on the seed MLP); while the GPU's arithmetic is shorter than that, the GPU idles and
# a graph wins many times over. Once the arithmetic is longer, eager queues its launches ahead of the GPU
# and a graph only removes the gaps between kernels (~2 µs each), under 2% of the step once the
# arithmetic takes 50× the step's gaps. The arithmetic's time is estimated from the detected SM count
# at a sustained ~0.4 TFLOP/s of FP32 per SM (128 FP32 lanes × 2 FLOP × ~1.5 GHz, Ampere to Hopper).
KERNELS_PER_LAYER = 10
KERNELS_PER_STEP = 10  # loss, its gradient, the optimizer's foreach ops, the loss buffer
GAP_S = 2e-6
PAYS_BELOW = 50
FP32_FLOPS_PER_SM = 0.4e12


@dataclass(frozen=True)
class GraphPlan(FastPlan):
    epochs_per_graph: int  # K


def graph_plan(work: Workload, config: TrainConfig) -> tuple[GraphPlan | None, str]:
    """What a capture of ``work``'s step would hold (the fast paths' one plan, plus K), or (None, why
    it cannot), on any device."""
    plan, why = plan_for(work, config)
    if plan is None:
        return None, why
    if plan.steps_per_epoch > MAX_STEPS_PER_EPOCH:
        return None, (
            f"{plan.steps_per_epoch} mini-batches an epoch are too many to unroll into one graph "
            f"(at most {MAX_STEPS_PER_EPOCH}; use a larger --batch-size)"
        )
    k = _epochs_per_graph(plan.steps_per_epoch, config.log_every, work.losses.numel())
    return GraphPlan(**{f.name: getattr(plan, f.name) for f in fields(plan)}, epochs_per_graph=k), ""


def capture_pays(step_flops: float, n_layers: int, sms: int) -> bool:
    """True while a step's arithmetic is short enough that its kernel launches are ≥ 2% of it."""
    arithmetic_s = step_flops / (sms * FP32_FLOPS_PER_SM)
    gaps_s = (KERNELS_PER_LAYER * n_layers + KERNELS_PER_STEP) * GAP_S
    return arithmetic_s < PAYS_BELOW * gaps_s


def _epochs_per_graph(steps_per_epoch: int, log_every: int, n_slots: int) -> int:
    """K: as many epochs as fit the unroll budget and a log interval, preferring a divisor of
    ``log_every`` (then no one-epoch replays are left over before a log point)."""
    most = max(1, min(MAX_EPOCHS_PER_GRAPH, MAX_STEPS_PER_GRAPH // steps_per_epoch, n_slots, log_every))
    divisors = [d for d in range(most, 0, -1) if log_every % d == 0]
    return divisors[0] if divisors and 2 * divisors[0] >= most else most


def cuda_graph_runner(
    work: Workload, config: TrainConfig, *, capture: Capture = capture_cuda_graph
) -> tuple[Runner | None, str]:
    """The captured-step runner for ``work`` (warm-up and capture timed as ``runner.setup_s``), or
    (None, the one-line reason the eager step runs). ``--fast on`` captures even a step too big for
    capture to pay. ``capture``: how a graph is made (tests inject a failing one)."""
    if work.device.type != "cuda":
        return None, f"CUDA graphs need a CUDA device, not {work.device}"
    plan, why = graph_plan(work, config)
    if plan is None:
        return None, why
    sms = torch.cuda.get_device_properties(work.device).multi_processor_count
    if config.fast != "on" and not capture_pays(
        plan.step_flops, plan.n_layers, sms
    ):  # --fast on: capture anyway
        return None, (
            f"{plan.step_flops / 1e9:.1f} GFLOP a step keeps the GPU busy: kernel launches are under 2% "
            "of it, so a CUDA graph would not pay"
        )
    return build_runner(work, config, plan, capture)


_failed: dict[tuple, str] = {}  # (device, plan, rows, capture) -> why its capture failed, once a process


def build_runner(
    work: Workload, config: TrainConfig, plan: GraphPlan, capture: Capture
) -> tuple[Runner | None, str]:
    """Warm up and capture; any failure leaves ``work`` as it was and returns (None, why in one line).
    Once per process and shape: a failed capture's reason is kept and not tried again (``--device auto``
    builds the step several times; a second failure could hide the first one's cause), and a capture
    that worked is self-checked once (``training.guard`` keeps the verdict). The graph is not kept: it
    replays the addresses of its workload's own tensors (parameters, data, loss buffer, optimizer
    state), so each workload captures its own; reusing one would train an earlier module (one that an
    earlier ``fit()`` returned) on its data."""
    key = (str(work.device), plan, tuple(work.x_train.shape), capture)
    if key in _failed:
        return None, _failed[key]
    started = time.perf_counter()
    try:
        runner = GraphRunner(work, config, plan, capture)
        runner.setup()
    except Exception as error:  # capture can fail in many ways (an op that syncs, a driver limit): eager
        _failed[key] = f"CUDA graph capture failed ({one_line(error)}); training on eager"
        return None, _failed[key]
    runner.setup_s = time.perf_counter() - started
    shape = "full batch" if plan.steps_per_epoch == 1 else f"{plan.steps_per_epoch} mini-batches an epoch"
    runner.reason = (
        f"whole step captured in a CUDA graph ({shape}, {plan.epochs_per_graph} epochs a replay, "
        f"{plan.step_flops / 1e3:.0f} kFLOP a step)"
    )
    return runner, runner.reason


class GraphRunner:
    """Trains ``work`` by replaying captured epochs. The weights are ``work.model``'s own parameters;
    the optimizer state lives in static tensors here and goes to ``work.optimizer`` in torch's format
    at ``sync_module()``."""

    name = "cuda-graph"

    def __init__(
        self,
        work: Workload,
        config: TrainConfig,
        plan: GraphPlan,
        capture: Capture,
        *,
        foreach: bool | None = None,
    ) -> None:
        """``foreach``: Adam's update as torch's foreach code (default: on CUDA, as torch chooses)."""
        self.work, self.config, self.plan, self._capture = work, config, plan, capture
        if foreach is None:
            foreach = work.device.type == "cuda"  # torch's own default for its optimizers
        self.adam = adam_foreach if foreach else adam_per_tensor
        self.setup_s = 0.0
        self.reason = ""
        self.self_check = None  # set by training.runner.select_runner once it has checked this path
        self.check_epochs = plan.epochs_per_graph + 1  # the self-check replays both graphs
        device = work.device
        self.params = [p for p in work.model.parameters() if p.requires_grad]
        self.buf1 = [torch.zeros_like(p) for p in self.params]  # momentum buffer / exp_avg
        self.buf2 = [torch.zeros_like(p) for p in self.params] if plan.optimizer != SGD else []
        self.steps = 0  # optimizer steps taken, counted on the host: writing them back reads no device
        self.step_i = torch.zeros(1, dtype=torch.long, device=device)  # the same count for the graph (a row)
        self.table = adam_table(plan, device) if plan.optimizer != SGD else torch.zeros((1, 2), device=device)
        self.idx = torch.zeros(1, dtype=torch.long, device=device)  # the epoch the graph writes next
        self.x, self.y, self.losses = work.x_train, work.y_train, work.losses
        n = self.x.shape[0]
        self.full = plan.steps_per_epoch == 1
        self.starts = range(0, n, plan.batch_size)
        self.perms = torch.zeros(
            (0 if self.full else plan.epochs_per_graph, n), dtype=torch.long, device=device
        )
        self.batch_losses = torch.zeros(len(self.starts), device=device)
        # each batch's share of the epoch mean, as training/epoch.py computes it
        self.weights = torch.tensor([min(plan.batch_size, n - s) / n for s in self.starts], device=device)
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.graphs: dict[int, Graph] = {}  # epochs a replay -> graph
        self._marked: list[torch.Tensor] | None = None  # mark(): the last log point's weights and state
        self._marked_steps = 0
        self.load_module()

    # -- the arithmetic that is captured ---------------------------------------------------------------

    def epochs(self, k: int) -> None:
        """``k`` epochs, each loss into ``losses[idx]`` then ``idx += 1``; epoch ``e`` of a mini-batch
        run shuffles by ``perms[e]``. No host sync: this is what a graph holds."""
        for e in range(k):
            if self.full:
                loss = self._step(self.x, self.y)
            else:
                order = self.perms[e]
                for j, start in enumerate(self.starts):
                    rows = order[start : start + self.plan.batch_size]
                    self.batch_losses[j] = self._step(
                        self.x.index_select(0, rows), self.y.index_select(0, rows)
                    )
                loss = torch.dot(self.batch_losses, self.weights)
            self.losses.index_copy_(0, self.idx, loss.view(1))
            self.idx.add_(1)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.work.loss_fn(self.work.model(x), y)
        grads = torch.autograd.grad(loss, self.params)
        with torch.no_grad():
            if self.plan.optimizer == SGD:
                sgd_update(self.params, list(grads), self.buf1, self.plan)
            else:
                # torch's Adam on the CPU is its per-tensor code, on CUDA its foreach code
                self.step_i.add_(1).clamp_(max=len(self.table) - 1)
                numbers = self.table.index_select(0, self.step_i)  # this step's row, on the device
                self.adam(self.params, list(grads), self.buf1, self.buf2, numbers, self.plan)
        return loss.detach()

    # -- setup ---------------------------------------------------------------------------------------

    def setup(self) -> None:
        """Warm up on the capture stream (the pattern of torch.cuda.make_graphed_callables), put every
        tensor the warm-up changed back, then capture the K-epoch and the one-epoch graphs."""
        saved = self._state()
        try:
            if self.stream is not None:
                self.stream.wait_stream(torch.cuda.current_stream(self.work.device))
            with self._on_stream():
                if not self.full:  # the warm-up draws nothing from the run's generator
                    self.perms.copy_(
                        torch.arange(self.x.shape[0], device=self.x.device).expand_as(self.perms)
                    )
                for _ in range(WARMUP_EPOCHS):
                    self.idx.zero_()
                    self.epochs(1)
        finally:
            with self._on_stream(), torch.no_grad():
                for now, before in zip(self._tensors(), saved, strict=True):
                    now.copy_(before)
            if self.stream is not None:
                torch.cuda.current_stream(self.work.device).wait_stream(self.stream)
        self._capture_graphs()

    def _capture_graphs(self) -> None:
        k = self.plan.epochs_per_graph
        self.graphs = {}
        first = self._capture(lambda: self.epochs(k), None, self.stream)
        self.graphs[k] = first
        if k > 1:
            self.graphs[1] = self._capture(lambda: self.epochs(1), first.pool(), self.stream)

    def _on_stream(self):
        return torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()

    def _tensors(self) -> list[torch.Tensor]:
        """Everything a step writes that must survive the warm-up (loss slot 0 included)."""
        return [*self.params, *self.buf1, *self.buf2, self.step_i, self.idx, self.losses[:1]]

    def _state(self) -> list[torch.Tensor]:
        return [t.detach().clone() for t in self._tensors()]

    # -- the Runner protocol -------------------------------------------------------------------------

    def run(self, start: int, stop: int, should_stop: Callable[[], bool]) -> int:
        if not self.graphs:  # hyperparameters changed (load_module): capture again, or run uncaptured
            self._recapture()  # (capture syncs the device: once, after such a change only)
        self.idx.fill_(start)  # a kernel with ``start`` as its argument: no sync
        k, epoch = self.plan.epochs_per_graph, start
        while epoch < stop:
            count = k if stop - epoch >= k else 1
            if not self.full:  # the eager epoch's draws, in its order: one randperm an epoch
                for e in range(count):
                    torch.randperm(self.x.shape[0], generator=self.work.generator, out=self.perms[e])
            self.graphs[count].replay()
            epoch += count
            self.steps += count * self.plan.steps_per_epoch
            if should_stop():
                break
        return epoch

    def _recapture(self) -> None:
        started = time.perf_counter()
        try:
            self.setup()
        except Exception as error:  # the same arithmetic, uncaptured: slower, never wrong
            self.reason = f"CUDA graph re-capture failed ({one_line(error)}); running uncaptured"
            self._capture = run_uncaptured
            self._capture_graphs()
        self.setup_s += time.perf_counter() - started

    def mark(self) -> None:
        """Keep this log point's weights and optimizer state (device copies, no sync) for ``restore()``."""
        live = [*self.params, *self.buf1, *self.buf2]
        if self._marked is None:
            self._marked = [t.detach().clone() for t in live]
        else:
            torch._foreach_copy_(self._marked, live)
        self._marked_steps = self.steps

    def restore(self) -> None:
        """The weights and optimizer state of the last ``mark()``, into the module and the optimizer."""
        if self._marked is None:
            return
        with torch.no_grad():
            torch._foreach_copy_([*self.params, *self.buf1, *self.buf2], self._marked)
        self.steps = self._marked_steps
        if self.steps == 0 and self.work.optimizer is not None:
            self.work.optimizer.state.clear()  # no step before the mark: no state, as in torch
        self.sync_module()

    def sync_module(self) -> None:
        """The weights are the module's own; the optimizer state goes into ``work.optimizer`` (device
        copies, and the step count from the host: no sync)."""
        plan = self.plan
        write_state(
            self.work.optimizer, self.params, plan.optimizer, plan.momentum, self.steps, self.buf1, self.buf2
        )

    def load_module(self) -> None:
        """Optimizer state and hyperparameters from ``work.optimizer`` (after resume or the NaN stop);
        the weights need nothing, the graphs read the module's parameters."""
        optimizer = self.work.optimizer
        if optimizer is not None:
            hyper, _ = optimizer_hyper(optimizer, self.config)  # resume may have restored param_groups
            if hyper is not None and replace(self.plan, **hyper) != self.plan:
                self.plan = replace(self.plan, **hyper)
                if self.plan.optimizer != SGD:
                    self.table = adam_table(self.plan, self.work.device)
                self.graphs = {}  # captured with the old numbers: capture again at the next run()
        self.steps = read_state(optimizer, self.params, self.buf1, self.buf2)
        self.step_i.fill_(min(self.steps, len(self.table) - 1))  # (a kernel argument: no sync)
