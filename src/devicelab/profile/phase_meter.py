"""Phases of the steps of a watched program, from the boundaries the global hooks report.

The watcher (``devicelab.profile.watch``) calls ``push(phase)`` when the program enters a phase
(a top-level module's forward, a ``backward()`` call, an optimizer step, a ``DataLoader`` batch, a
host→device copy) and ``pop()`` when it leaves; whatever runs between them is "other" (the user's own
Python: the loop, logging, ``losses.append(loss.item())``). Each switch closes a segment with a
``perf_counter`` stamp and, on CUDA, a CUDA event (read once, at the end), so every moment of a step
belongs to exactly one phase: the phases add up to the step.

The watcher's own cost is taken off the host times: each wrapped call (a push and its pop) costs what
``hook_cost.SwitchProbe`` measured on empty calls through the same wrapper.

The loss is found from each ``backward()`` call, when the step has ended (walking the graph is no part of
the step): the module whose output it differentiates (then that module's forward segments are "loss"), or
else the code that ran between the last forward and ``backward()`` (a loss function: those "other"
segments become "loss").
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from devicelab.profile.clocks import EventClock

PHASES = ("data", "forward", "loss", "backward", "optimizer", "eval", "other")
PAUSED = "(paused)"  # a bare step between watched ones


@dataclass(slots=True)
class Segment:
    phase: str
    host_s: float
    step: int
    module: int = 0  # id() of the top-level module of a forward segment
    switch: bool = False  # closed by a pop: a wrapped call's own segment (the watcher's switch cost)


class PhaseMeter:
    def __init__(self, events: EventClock | None = None, probe=None) -> None:
        self.events = events
        self.probe = probe  # hook_cost.SwitchProbe: the cost of a switch, taken off the host times
        self.segments: list[Segment] = []
        self.stack = ["other"]
        self.step = 0
        self.loss_modules: set[int] = set()
        self._losses: list[tuple[Callable[[], int | None], int, int]] = []  # backward() calls of the step
        self._forward_end = 0  # index of the first segment after the last top-level forward
        self._step_start = 0  # index of the step's first segment
        self._forwarded = False  # a top-level forward ran in this step
        self._t = time.perf_counter()
        if events is not None:
            events.mark()

    def _close(self, module: int = 0) -> None:
        now = time.perf_counter()
        self.segments.append(Segment(self.stack[-1], now - self._t, self.step, module))
        self._t = now
        if self.events is not None:
            self.events.mark()

    def push(self, phase: str) -> None:
        self._close()
        self.stack.append(phase)

    def forward_starts(self, phase: str, by_hand: bool) -> None:
        """A top-level forward (``phase``: "forward" or "eval"). With ``by_hand`` (no optimizer: a step
        ends at ``backward()``), the user's code between the step's start and its first forward is the
        weight update written by hand: "optimizer"."""
        self.push(phase)
        if by_hand and not self._forwarded:
            for segment in self.segments[self._step_start :]:
                if segment.phase == "other":
                    segment.phase = "optimizer"
        self._forwarded = True

    def pop(self, module: int = 0) -> None:
        """Leave the current phase; ``module``: the top-level module whose forward ends here."""
        self._close(module)
        if len(self.stack) > 1:
            self.stack.pop()
            self.segments[-1].switch = True
        if module:
            self._forward_end = len(self.segments)

    def resume(self) -> None:
        """Watch again after a bare step: the time since the last step ended is left out (on CUDA its
        events' interval goes to a segment no phase counts)."""
        self._close()
        self.segments[-1].phase = PAUSED
        self.stack = ["other"]
        self._forward_end = self._step_start = len(self.segments)
        self._forwarded = False
        self._losses.clear()

    def backward_starts(self, loss_module: Callable[[], int | None]) -> None:
        """``backward()`` was called; ``loss_module()`` says on the output of which module (None: of a loss
        function, whose time is then the code between the last forward and here). It walks the graph, so
        it runs when the step has ended, outside its time."""
        self._close()
        self._losses.append((loss_module, self._forward_end, len(self.segments)))
        self._forward_end = len(self.segments)

    def _find_losses(self) -> None:
        for loss_module, start, end in self._losses:
            module = loss_module()
            if module is not None:
                self.loss_modules.add(module)
                continue
            for segment in self.segments[start:end]:
                if segment.phase == "other" and segment.step == self.step:
                    segment.phase = "loss"
        self._losses.clear()

    def step_ends(self) -> None:
        self._close()
        self._find_losses()
        self.step += 1
        self._forward_end = self._step_start = len(self.segments)
        self._forwarded = False
        if self.probe is not None:  # between steps: its calls are in none
            self.probe.step()

    def _phase(self, segment: Segment) -> str:
        if segment.phase == "forward" and segment.module in self.loss_modules:
            return "loss"
        return segment.phase

    def per_step(self) -> tuple[dict[str, list[float]], dict[str, list[float]] | None]:
        """Seconds per phase, one value per completed step: host, and device (CUDA events) or None."""
        host = {p: [0.0] * self.step for p in PHASES}
        device = {p: [0.0] * self.step for p in PHASES} if self.events is not None else None
        own = self._own_cost()
        for i, segment in enumerate(self.segments):
            if segment.step >= self.step or segment.phase == PAUSED:
                continue  # a step the window did not finish, or a bare one
            phase = self._phase(segment)
            host[phase][segment.step] += max(0.0, segment.host_s - own[i])
            if device is not None:
                device[phase][segment.step] += self.events.seconds(i, i + 1)
        return host, device

    def switch_cost(self):
        """The measured cost of one switch (``hook_cost.SwitchCost``), or None."""
        return self.probe.cost() if self.probe is not None else None

    def switches_per_step(self) -> float:
        done = [s for s in self.segments if s.step < self.step and s.switch]
        return len(done) / self.step if self.step else 0.0

    def _own_cost(self) -> list[float]:
        """The watcher's own host time in each segment: a switch's inner part in the wrapped call's
        segment, its outer part in the segment after it (where the pop's stamp leaves it)."""
        own = [0.0] * len(self.segments)
        cost = self.switch_cost()
        if cost is not None:
            for i, segment in enumerate(self.segments):
                if segment.switch:
                    own[i] += cost.inner_s
                    if i + 1 < len(own):
                        own[i + 1] += cost.outer_s
        return own

    def step_seconds(self) -> list[float]:
        host, _ = self.per_step()
        return [sum(host[p][i] for p in PHASES) for i in range(self.step)]


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0
