"""The profiler in Python: ``devicelab.watch()`` around any code, ``devicelab.profile_step`` for one
model in hand, and ``profile_program`` behind ``devicelab profile SCRIPT.py``. All three are the same
``Watch`` read into the same ``WatchReport``.

    with devicelab.watch() as w:
        for epoch in range(1000):
            ...                     # the user's loop, unchanged
    print(w.report())               # the screen ``devicelab profile`` prints
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from devicelab.errors import UserError
from devicelab.profile import record, script
from devicelab.profile.watch import StopProgram, Watch

WARMUP, STEPS = 10, 100  # a few seconds on the seed workload: three windows of STEPS steps


class Session:
    """What ``watch()`` yields: ``report()`` reads the watch once it has ended (or so far, inside)."""

    def __init__(self, watch: Watch, profiled: record.Profiled) -> None:
        self.watch = watch
        self.profiled = profiled
        self._report: record.WatchReport | None = None

    def report(self) -> record.WatchReport:
        if self._report is None:
            self._report = build(self.watch, self.profiled)
        return self._report


def build(watch: Watch, profiled: record.Profiled) -> record.WatchReport:
    from dataclasses import replace

    profiled = replace(
        profiled,
        device=str(watch.device or "cpu"),
        threads=torch.get_num_threads(),
        step_source=watch.mode,
        optimizers=tuple(watch.optimizers),
    )
    return record.build(watch, profiled)


@contextmanager
def watch(
    *, warmup: int = WARMUP, steps: int = STEPS, layers: bool = True, what: str = "devicelab.watch()"
) -> Iterator[Session]:
    """Watch the block through torch's global hooks (see ``devicelab.profile.watch``)."""
    w = Watch(warmup=warmup, steps=steps, layers=layers)
    session = Session(w, record.Profiled(kind="code", target=what))
    with w:
        yield session


def profile_step(
    model: torch.nn.Module,
    batch,
    loss_fn: Callable,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    warmup: int = WARMUP,
    steps: int = STEPS,
) -> record.WatchReport:
    """Profile the step ``loss_fn(model(x), y).backward(); optimizer.step()`` on ``batch`` (``(x, y)``, or
    ``x`` with ``loss_fn(output)``). The step really trains: the model's weights change."""
    x, *rest = batch if isinstance(batch, (tuple, list)) else (batch,)
    w = Watch(warmup=warmup, steps=steps, stop_after=True)
    with w:
        try:
            for _ in range(warmup + 3 * steps + 1):
                if optimizer is not None:
                    optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), *rest)
                loss.backward()
                if optimizer is not None:
                    optimizer.step()
        except StopProgram:
            pass
    return build(w, record.Profiled(kind="model", target=type(model).__name__))


def profile_program(
    program: script.Program, *, warmup: int, steps: int, stop_after: bool, layers: bool = True
) -> tuple[record.WatchReport | None, script.Outcome]:
    """Run ``program`` under a watch; the report is None when it never ran a step."""
    w = Watch(warmup=warmup, steps=steps, layers=layers, stop_after=stop_after)
    with w:
        outcome = script.run(program)
    profiled = record.Profiled(kind=program.kind, target=program.name, args=program.args)
    if w.mode is None:
        return None, outcome
    return build(w, profiled), outcome


def never_trained(program: script.Program) -> UserError:
    return UserError(
        f"{program.label} ran without calling a module, backward() or an optimizer: nothing to profile",
        hint="profile a script that trains or runs a torch.nn.Module",
    )
