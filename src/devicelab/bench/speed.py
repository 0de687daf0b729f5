"""``bench speed``: the lesson's loop, devicelab's trainer (eager and fast) and the installed peers, on the
same workload, per device and size, measured in one process as ratios to the lesson's loop.

Every row first runs once, short, as a warm-up (imports, kernel loading, first compilation: its set-up
time is kept as the cold figure). Then each repeat runs every row once, in a fresh random order drawn
from ``order_seed``, so drift on a shared machine spreads over all rows. With ``under_load``, the repeats
run again beside a process that spins on one core. Ctrl-C (``stop.request()``) ends the measurement after
the run in progress; the result keeps every row with a timed run and says it was interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from devicelab.bench.logging_experiment import describe_device
from devicelab.bench.speed_rows import (
    LESSON_DEFAULT_THREADS,
    ROW_NAMES,
    ROWS,
    ImportModule,
    RowSpec,
    Run,
    Setting,
    Size,
    run_lesson,
    scaled,
)
from devicelab.data import Dataset, load_dataset
from devicelab.errors import UserError
from devicelab.threads import torch_threads
from devicelab.timing import Measurement
from devicelab.training.config import TrainConfig
from devicelab.training.interrupt import StopFlag, stop_on_sigint

LOSS_RTOL = 1e-4  # final losses must agree with the lesson's to this relative difference
WARMUP_EPOCHS = 100


@dataclass(frozen=True)
class Spec:
    """What to measure."""

    epochs: int
    repeats: int
    devices: tuple[str, ...]
    sizes: tuple[Size, ...] = (Size(),)
    rows: tuple[str, ...] = ROW_NAMES
    threads: int | None = None  # None: the count devicelab's device choice picks, per device
    under_load: bool = False
    order_seed: int = 42


@dataclass(frozen=True)
class Cell:
    """One row on one device at one size: its timed runs, or why it has none."""

    row: str
    label: str
    kind: str  # "lesson" | "devicelab" | "peer"
    device: str
    size: Size
    epochs: int
    threads: int
    status: str  # "ok" | "not installed" | "not supported" | "failed" | "not run"
    note: str = ""  # why not ok (with the fix), or a caveat
    times: Measurement | None = None  # seconds of the training loop per run
    setups: tuple[float, ...] = ()  # set-up seconds per timed run
    cold_setup_s: float | None = None  # the warm-up run's set-up: the first in this process
    final_loss: float | None = None
    path: str = ""
    path_reason: str = ""
    same_init: bool = True
    loaded: Measurement | None = None  # seconds per run beside a busy process

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.times is not None

    @property
    def us_per_epoch(self) -> float:
        return self.times.median / self.epochs * 1e6 if self.times else math.nan

    @property
    def us_per_epoch_iqr(self) -> float:
        return self.times.iqr / self.epochs * 1e6 if self.times else math.nan

    @property
    def setup_s(self) -> float | None:
        return Measurement(self.setups).median if self.setups else None

    @property
    def load_slowdown(self) -> float | None:
        if self.loaded is None or self.times is None:
            return None
        return self.loaded.median / self.times.median


@dataclass(frozen=True)
class Result:
    spec: Spec
    config: dict
    cells: tuple[Cell, ...]
    threads: dict[str, tuple[int, str]]  # device -> (threads, why)
    default_threads: int  # torch's default intra-op thread count in this process
    device_names: dict[str, str]
    torch_version: str
    started: str
    wall_s: float
    order: tuple[tuple[str, int, str, str, str], ...] = ()  # (phase, repeat, device, size, row)
    runs_planned: int = 0
    interrupted: bool = False

    @property
    def runs_done(self) -> int:
        return len(self.order)

    def group(self, device: str, size: Size) -> list[Cell]:
        return [c for c in self.cells if c.device == device and c.size == size]

    def baseline(self, cell: Cell) -> Cell | None:
        """The lesson's loop on the same device and size, when it has timed runs."""
        for c in self.group(cell.device, cell.size):
            if c.row == "lesson" and c.ok:
                return c
        return None

    def ratio(self, cell: Cell) -> float | None:
        """How many times faster than the lesson's loop (its median over this row's)."""
        base = self.baseline(cell)
        if base is None or not cell.ok:
            return None
        return base.times.median / cell.times.median

    def loss_difference(self, cell: Cell) -> float | None:
        """|final loss - the lesson's| / |the lesson's|."""
        base = self.baseline(cell)
        if base is None or cell.final_loss is None or base.final_loss is None:
            return None
        return abs(cell.final_loss - base.final_loss) / max(abs(base.final_loss), 1e-30)

    def agrees(self, cell: Cell) -> bool | None:
        difference = self.loss_difference(cell)
        return None if difference is None else difference <= LOSS_RTOL  # (NaN never agrees)


Progress = Callable[[int, int, str], None]  # (runs done, runs in all, what just ran)


def _lesson_default_threads(threads: int) -> RowSpec:
    return RowSpec(
        LESSON_DEFAULT_THREADS, f"the lesson's loop, torch's {threads} threads", "lesson", run_lesson
    )


def _device_threads(config: TrainConfig, dataset: Dataset, device: str, spec: Spec) -> tuple[int, str]:
    if spec.threads is not None:
        return spec.threads, "--threads"
    from devicelab.training.device_choice import choose_device

    choice = choose_device(dataclasses.replace(config, device=device, threads=None), dataset)
    return choice.threads, f"devicelab's choice: {choice.reason}"


@contextlib.contextmanager
def busy_core() -> Iterator[int]:
    """A child process spinning on one core while inside; yields its pid, ends it on the way out."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # let it start spinning before the first timed run
        yield process.pid
    finally:
        process.kill()
        process.wait()


def measure_speed(
    config: TrainConfig,
    spec: Spec,
    *,
    dataset: Dataset | None = None,
    progress: Progress | None = None,
    stop: StopFlag | None = None,
    import_module: ImportModule = importlib.import_module,
) -> Result:
    """Measure every row of ``spec`` (see the module docstring). ``import_module`` imports the peers'
    frameworks (injectable, to see a row "not installed")."""
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S"), time.perf_counter()
    dataset = dataset if dataset is not None else load_dataset(config)
    default_threads = torch.get_num_threads()
    flag = stop or StopFlag()
    with torch_threads(None):  # each row sets its own thread count; the count from before is put back
        threads = {d: _device_threads(config, dataset, d, spec) for d in spec.devices}
        plans = _plan(config, dataset, spec, threads, default_threads, flag, import_module)
        runnable = [p for p in plans if p.status == "ok"]
        rounds = [("idle", r) for r in range(spec.repeats)]
        rounds += [("under load", r) for r in range(spec.repeats)] if spec.under_load else []
        total = len(runnable) * (1 + len(rounds))
        order: list[tuple[str, int, str, str, str]] = []
        rng = random.Random(spec.order_seed)

        def one_round(phase: str, repeat: int) -> None:
            for plan in rng.sample(runnable, len(runnable)):
                if flag.requested or plan.status != "ok":
                    continue
                run = plan.warm_up() if phase == "warm-up" else plan.timed(phase)
                if run is None:
                    continue  # failed, or stopped inside train(): not a whole run
                order.append((phase, repeat, plan.device, plan.size.label, plan.row.name))
                what = phase if phase == "warm-up" else f"{phase} {repeat}"
                _report(progress, len(order), total, plan, what, run)

        with stop_on_sigint(flag):
            one_round("warm-up", 0)
            for phase, repeat in rounds:
                if flag.requested:
                    break
                with busy_core() if phase == "under load" else contextlib.nullcontext():
                    one_round(phase, repeat + 1)
    return Result(
        spec=spec,
        config=config.to_dict(),
        cells=tuple(p.cell() for p in plans),
        threads=threads,
        default_threads=default_threads,
        device_names={d: describe_device(torch.device(d)) for d in spec.devices},
        torch_version=torch.__version__,
        started=started,
        wall_s=time.perf_counter() - t0,
        order=tuple(order),
        runs_planned=total,
        interrupted=flag.requested,
    )


def _report(progress: Progress | None, done: int, total: int, plan: _Plan, what: str, run: Run | None):
    if progress is None or run is None:
        return
    took = f"{run.seconds / plan.epochs_of(what) * 1e6:.1f} µs/epoch"
    setup = f", set-up {run.setup_s:.2f} s" if run.setup_s else ""
    path = f" [{run.path}]" if plan.row.kind == "devicelab" else ""
    progress(done, total, f"{plan.device} {plan.size.label} {plan.row.name}{path} {what}: {took}{setup}")


@dataclass
class _Plan:
    """One row on one device and size, while it is being measured."""

    row: RowSpec
    device: str
    size: Size
    setting: Setting
    status: str = "ok"
    note: str = ""
    cold: Run | None = None
    runs: dict[str, list[Run]] = field(default_factory=lambda: {"idle": [], "under load": []})

    def epochs_of(self, what: str) -> int:
        return min(self.setting.epochs, WARMUP_EPOCHS) if what == "warm-up" else self.setting.epochs

    def _call(self, setting: Setting) -> Run | None:
        """The row's run; a peer (or a fast path asked for where it cannot run) that fails is reported as
        failed, not raised: one framework's problem must not lose the other rows."""
        try:
            return self.row.run(setting)
        except UserError as error:
            if self.row.kind != "peer" and self.row.name != "fast":
                raise
            self.status, self.note = "failed", error.one_line()
        except Exception as error:
            if self.row.kind != "peer":
                raise
            self.status, self.note = "failed", f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
        return None

    def warm_up(self) -> Run | None:
        short = dataclasses.replace(self.setting, epochs=self.epochs_of("warm-up"))
        self.cold = self._call(short)
        return self.cold

    def timed(self, phase: str) -> Run | None:
        run = self._call(self.setting)
        if run is not None:
            self.runs[phase].append(run)
        return run

    def cell(self) -> Cell:
        idle, loaded = self.runs["idle"], self.runs["under load"]
        last = idle[-1] if idle else None
        status = self.status if self.status != "ok" or idle else "not run"
        return Cell(
            row=self.row.name,
            label=self.row.label,
            kind=self.row.kind,
            device=self.device,
            size=self.size,
            epochs=self.setting.epochs,
            threads=self.setting.threads,
            status=status,
            note=self.note,
            times=Measurement(tuple(r.seconds for r in idle), self.row.name) if idle else None,
            setups=tuple(r.setup_s for r in idle),
            cold_setup_s=self.cold.setup_s if self.cold else None,
            final_loss=last.final_loss if last else None,
            path=last.path if last else "",
            path_reason=last.path_reason if last else "",
            same_init=self.row.same_init,
            loaded=Measurement(tuple(r.seconds for r in loaded)) if loaded else None,
        )


def _plan(config, dataset, spec: Spec, threads, default_threads, flag, import_module) -> list[_Plan]:
    plans = []
    for device in spec.devices:
        chosen = threads[device][0]
        rows = [r for r in ROWS if r.name in spec.rows]
        extra = device == "cpu" and LESSON_DEFAULT_THREADS in spec.rows and default_threads != chosen
        rows += [_lesson_default_threads(default_threads)] if extra else []
        for size in spec.sizes:
            sized_config, sized_data = scaled(config, dataset, size, spec.epochs)
            for row in rows:
                n = default_threads if row.name == LESSON_DEFAULT_THREADS else chosen
                setting = Setting(
                    sized_config, sized_data, torch.device(device), n, spec.epochs, flag, import_module
                )
                plan = _Plan(row, device, size, setting)
                missing = row.missing(import_module)
                reason = None if missing else row.check(setting)
                if missing:
                    plan.status, plan.note = "not installed", missing
                elif reason:
                    plan.status, plan.note = "not supported", reason
                plans.append(plan)
    return plans
