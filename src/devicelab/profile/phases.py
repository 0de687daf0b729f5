"""Where one training step's time goes: forward, loss, backward, optimizer, and everything else.

Three measurements of the same step, each done so that it does not disturb the others:

- ``time_phases``: the step ``devicelab train`` runs, watched through torch's global hooks as any user's
  program is (``devicelab.profile.watch``; host ``perf_counter`` always, CUDA events too on a GPU, read
  once at the end). Without an optimizer object (devicelab's plain-SGD step) the update is "optimizer"
  by its place: the code between a step's ``backward`` and the next forward.
- ``count_launches``: ``torch.profiler`` over a few steps of the real step: operators per step and, on
  a GPU, kernels per step and the GPU's busy time (the union of its kernel and copy intervals).
- ``step_wall``: the real step, un-instrumented, timed by ``devicelab.timing.measure``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from devicelab.devices import sync_fn
from devicelab.profile.phase_meter import PHASES, mean
from devicelab.profile.watch import StopProgram, Watch
from devicelab.timing import measure
from devicelab.training.workload import Workload


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


def watch_steps(work: Workload, steps: int, warmup: int = 3, *, layers: bool = False) -> Watch:
    """Run the real step of ``work`` under the profiler every program gets (``devicelab.profile.watch``)
    until its windows are measured: phases over ``2 × steps`` steps, then (``layers``) layers."""
    step = work.repeated_step()
    watch = Watch(warmup=warmup, steps=steps, layers=layers, stop_after=True)
    with watch:
        try:
            for i in range(warmup + (3 if layers else 2) * steps + 1):
                step(i)
        except StopProgram:  # the watch ends the loop once its windows are measured
            pass
    return watch


def time_phases(watch: Watch) -> tuple[Phase, ...]:
    """Phases per step of a finished watch: the mean over its watched steps."""
    host, device = watch.meter.per_step()
    shown = [p for p in PHASES if p not in ("data", "eval") or any(host[p])]
    return tuple(Phase(p, mean(host[p]), mean(device[p]) if device else None) for p in shown)


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


def step_breakdown(
    work: Workload, steps: int = 20, warmup: int = 3, watch: Watch | None = None
) -> StepBreakdown:
    """Phases (from ``watch``, or a watch of its own), operators and the real step's time of ``work``."""
    watch = watch if watch is not None else watch_steps(work, steps, warmup)
    step = work.repeated_step()
    phases = time_phases(watch)
    launches = count_launches(step, work.device)
    wall = step_wall(step, work.device)
    return StepBreakdown(phases, wall.median, wall.iqr, launches, steps, work.kind)
