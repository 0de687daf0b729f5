"""Where one training step's time goes: forward, loss, backward, optimizer, and everything else.

Three measurements of the same step, each done so that it does not disturb the others:

- ``time_phases``: the step ``devicelab train`` runs, written out with a clock stamp between phases (host ``perf_counter`` always;
  CUDA events too on a GPU, read once at the end). "other" is the rest of each loop iteration: recording
  the loss, the loop itself, the stamps.
- ``count_launches``: ``torch.profiler`` over a few steps of the real step: operators per step and, on
  a GPU, kernels per step and the GPU's busy time (the union of its kernel and copy intervals).
- ``step_wall``: the real step, un-instrumented, timed by ``devicelab.timing.measure``.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from devicelab.devices import sync_fn
from devicelab.profile.clocks import EventClock, PerfClock, clock_for
from devicelab.timing import measure
from devicelab.training.workload import Workload

PHASES = ("forward", "loss", "backward", "optimizer", "other")


@dataclass(frozen=True)
class Phase:
    name: str
    host_s: float  # median per step: time the CPU spent in this phase (launching, on an accelerator)
    device_s: float | None  # median per step between CUDA events; None on the CPU


@dataclass(frozen=True)
class Launches:
    operators: float  # top-level aten operators per step
    kernels: float | None  # GPU kernels and copies per step; None on the CPU
    gpu_busy_s: float | None  # per step


@dataclass(frozen=True)
class StepBreakdown:
    phases: tuple[Phase, ...]
    step_s: float  # median wall time of the real (un-instrumented) step
    step_iqr_s: float
    launches: Launches | None  # None where no step could be replayed under torch.profiler (a script)
    steps: int
    kind: str  # which of devicelab's steps (devicelab.training.workload.STEP_KINDS)

    @property
    def gpu_busy_fraction(self) -> float | None:
        if self.launches is None or self.launches.gpu_busy_s is None or self.step_s <= 0:
            return None
        return self.launches.gpu_busy_s / self.step_s

    def share(self, phase: Phase) -> float:
        total = sum(p.host_s for p in self.phases)
        return phase.host_s / total if total > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "steps": self.steps,
            "kind": self.kind,
            "step_s": self.step_s,
            "step_iqr_s": self.step_iqr_s,
            "phases": [
                {"name": p.name, "host_s": p.host_s, "device_s": p.device_s, "share": self.share(p)}
                for p in self.phases
            ],
            "operators_per_step": self.launches.operators if self.launches else None,
            "kernels_per_step": self.launches.kernels if self.launches else None,
            "gpu_busy_s": self.launches.gpu_busy_s if self.launches else None,
            "gpu_busy_fraction": self.gpu_busy_fraction,
        }


def _optim_phase_loop(work: Workload, steps: int, mark: Callable[[], None]) -> None:
    """``devicelab.training.step.make_step`` written out, with a stamp after each phase."""
    model, loss_fn, optimizer, x, y, losses = (
        work.model, work.loss_fn, work.optimizer, work.x, work.y, work.losses
    )  # fmt: skip
    n = losses.numel()
    for i in range(steps):
        mark()
        output = model(x)
        mark()
        loss = loss_fn(output, y)
        mark()
        optimizer.zero_grad(set_to_none=True)
        mark()
        loss.backward()
        mark()
        optimizer.step()
        mark()
        losses[i % n] = loss.detach()
    mark()


def _plain_sgd_phase_loop(work: Workload, steps: int, mark: Callable[[], None]) -> None:
    """``devicelab.training.step.make_plain_sgd_step`` written out, with a stamp after each phase."""
    model, loss_fn, x, y, losses, lr = work.model, work.loss_fn, work.x, work.y, work.losses, work.config.lr
    params = [p for p in model.parameters() if p.requires_grad]
    n = losses.numel()
    for i in range(steps):
        mark()
        output = model(x)
        mark()
        loss = loss_fn(output, y)
        mark()
        mark()  # nothing to zero: autograd.grad returns fresh gradients
        grads = torch.autograd.grad(loss, params)
        mark()
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-lr)
        mark()
        losses[i % n] = loss.detach()
    mark()


# One written-out loop per kind of step (devicelab.training.workload.STEP_KINDS); tests check that each
# trains exactly like the step it copies.
PHASE_LOOPS: dict[str, Callable[[Workload, int, Callable[[], None]], None]] = {
    "optim": _optim_phase_loop,
    "plain_sgd": _plain_sgd_phase_loop,
}


_MARKS_PER_STEP = 6


def _phase_seconds(clock: PerfClock | EventClock, steps: int) -> dict[str, list[float]]:
    per_phase: dict[str, list[float]] = {name: [] for name in PHASES}
    for i in range(steps):
        s = [i * _MARKS_PER_STEP + k for k in range(_MARKS_PER_STEP + 1)]  # s[6] is the next step's start
        per_phase["forward"].append(clock.seconds(s[0], s[1]))
        per_phase["loss"].append(clock.seconds(s[1], s[2]))
        per_phase["backward"].append(clock.seconds(s[3], s[4]))
        per_phase["optimizer"].append(clock.seconds(s[2], s[3]) + clock.seconds(s[4], s[5]))
        per_phase["other"].append(clock.seconds(s[5], s[6]))
    return per_phase


def time_phases(work: Workload, steps: int) -> tuple[Phase, ...]:
    capacity = _MARKS_PER_STEP * steps + 1
    host = PerfClock(capacity)
    device_clock = clock_for(work.device, capacity)
    device = device_clock if isinstance(device_clock, EventClock) else None

    def mark() -> None:
        host.mark()
        if device is not None:
            device.mark()

    PHASE_LOOPS[work.kind](work, steps, mark)
    host_s = _phase_seconds(host, steps)
    device_s = _phase_seconds(device, steps) if device is not None else None
    return tuple(
        Phase(name, statistics.median(host_s[name]), statistics.median(device_s[name]) if device_s else None)
        for name in PHASES
    )


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for the block: torch's profiler backend writes start/stop lines there."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _top_level_operator(event) -> bool:
    if not event.name.startswith("aten::"):
        return False
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return False
        parent = parent.cpu_parent
    return True


def _busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of ``(start_us, end_us)`` intervals, in seconds."""
    busy, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            busy += end - max(start, reach)
            reach = end
    return busy / 1e6


def count_launches(step: Callable[[int], None], device: torch.device, steps: int = 5) -> Launches:
    from torch.profiler import ProfilerActivity, profile

    on_gpu = device.type == "cuda"
    activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if on_gpu else [])]
    with _quiet_stderr(), profile(activities=activities) as prof:
        for i in range(steps):
            step(i)
    events = prof.events()
    operators = sum(1 for e in events if _top_level_operator(e)) / steps
    if not on_gpu:
        return Launches(operators, None, None)
    gpu = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    intervals = [(e.time_range.start, e.time_range.end) for e in gpu]
    return Launches(operators, len(gpu) / steps, _busy_seconds(intervals) / steps)


def step_wall(step: Callable[[int], None], device: torch.device, repeats: int = 5, number: int = 20):
    counter = iter(range(1 << 62))
    return measure(lambda: step(next(counter)), sync=sync_fn(device), repeats=repeats, number=number)


def step_breakdown(work: Workload, steps: int = 20, warmup: int = 3) -> StepBreakdown:
    step = work.repeated_step()
    for i in range(warmup):
        step(i)
    phases = time_phases(work, steps)
    launches = count_launches(step, work.device)
    wall = step_wall(step, work.device)
    return StepBreakdown(phases, wall.median, wall.iqr, launches, steps, work.kind)
