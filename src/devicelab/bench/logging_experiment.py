"""The homework experiment: record interval x recording strategy x device, each cell repeated.

Every cell first runs once as a warm-up (on CUDA that run also counts the syncs with PyTorch's debug
mode, which slows syncs down and so is never timed). Then each repeat runs every cell once, in a fresh
random order drawn from ``order_seed``, so that drift on a shared machine spreads over all cells. The
order, the seed and the thread count are part of the result.

Ctrl-C (or ``stop.request()``) ends the experiment after the run in progress; the result then holds every
cell that has at least one timed run, and says it was interrupted.
"""

from __future__ import annotations

import contextlib
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from devicelab.bench.eta import EtaError, Marks, eta_error
from devicelab.bench.memory import MemoryProbe, MemoryUse
from devicelab.bench.strategies import STRATEGIES
from devicelab.bench.syncs import DeviceSyncCount, SyncCounter, count_device_syncs
from devicelab.data import Dataset, load_dataset
from devicelab.devices import sync_fn
from devicelab.hardware.measure import sync_round_trip
from devicelab.threads import torch_threads
from devicelab.timing import Measurement, measure
from devicelab.training.config import TrainConfig
from devicelab.training.interrupt import StopFlag, stop_on_sigint
from devicelab.training.workload import build_workload


@dataclass(frozen=True)
class Grid:
    epochs: int
    intervals: tuple[int | None, ...]  # None: never record
    strategies: tuple[str, ...]
    devices: tuple[str, ...]
    repeats: int
    order_seed: int
    threads: int  # torch intra-op threads used for the whole experiment

    def cells(self) -> list[tuple[str, str, int | None]]:
        return [(d, s, k) for d in self.devices for s in self.strategies for k in self.intervals]


@dataclass(frozen=True)
class Run:
    """One timed run of one cell."""

    seconds: float
    syncs: int  # reads made through the SyncCounter
    records: int
    memory: MemoryUse
    eta: EtaError


@dataclass(frozen=True)
class CellResult:
    device: str
    strategy: str
    interval: int | None
    epochs: int
    records: int  # losses recorded (the buffer records every epoch, on the device)
    syncs: int  # reads of device values, counted at the call sites
    device_syncs: int | None  # synchronizing operations flagged by the device (CUDA debug mode), warm-up run
    times: Measurement  # seconds per run
    host_bytes: tuple[int, ...]  # resident-memory growth per run
    device_bytes: tuple[int, ...] | None  # device allocator peak growth per run (None: no allocator stats)
    eta: tuple[EtaError, ...]

    @property
    def us_per_epoch(self) -> float:
        return self.times.median / self.epochs * 1e6

    @property
    def us_per_epoch_iqr(self) -> float:
        return self.times.iqr / self.epochs * 1e6

    @property
    def memory_bytes(self) -> tuple[int, ...]:
        """Host growth plus device peak growth, per run."""
        device = self.device_bytes or (0,) * len(self.host_bytes)
        return tuple(h + d for h, d in zip(self.host_bytes, device, strict=True))

    @property
    def memory_median(self) -> float:
        return statistics.median(self.memory_bytes)

    @property
    def memory_iqr(self) -> float:
        return Measurement(tuple(float(b) for b in self.memory_bytes)).iqr

    @property
    def eta_smoothed_s(self) -> float:
        return statistics.median(e.smoothed_s for e in self.eta)

    @property
    def eta_mean_s(self) -> float:
        return statistics.median(e.mean_s for e in self.eta)


@dataclass(frozen=True)
class SyncCost:
    """The cost of one host-device sync on a device: ``devicelab.hardware.measure.sync_round_trip``, the
    same figure ``devicelab info --measure`` reports."""

    device: str
    round_trip: Measurement  # seconds per .item() with an empty queue

    @property
    def per_sync_s(self) -> float:
        return self.round_trip.median

    def to_dict(self) -> dict:
        return {"device": self.device, "per_sync_s": self.per_sync_s, "round_trip": self.round_trip.to_dict()}


@dataclass(frozen=True)
class LoggingExperiment:
    grid: Grid
    config: dict
    cells: tuple[CellResult, ...]  # every cell with at least one timed run
    sync_costs: tuple[SyncCost, ...]
    order: tuple[
        tuple[int, str, str, int | None], ...
    ]  # (repeat, device, strategy, interval); repeat 0 = warm-up
    device_names: dict[str, str]
    torch_version: str
    wall_s: float
    started: str = field(default="")
    runs_planned: int = 0  # warm-ups included
    interrupted: bool = False  # stopped early: some cells have fewer repeats, or none

    @property
    def runs_done(self) -> int:
        return len(self.order)

    def cell(self, device: str, strategy: str, interval: int | None) -> CellResult | None:
        for c in self.cells:
            if (c.device, c.strategy, c.interval) == (device, strategy, interval):
                return c
        return None


Progress = Callable[[int, int, str], None]  # (runs done, runs in all, what just ran)


# device type -> its name for the report; other types are named by their type
DEVICE_NAMES: dict[str, Callable[[torch.device], str]] = {
    "cpu": lambda d: platform.processor() or platform.machine(),
    "cuda": torch.cuda.get_device_name,
}


def describe_device(device: torch.device) -> str:
    return DEVICE_NAMES.get(device.type, lambda d: d.type)(device)


class _Bench:
    """The code that runs one cell once, on a fresh workload."""

    def __init__(self, config: TrainConfig, grid: Grid, dataset: Dataset) -> None:
        self.config, self.grid = config, grid
        self.dataset = dataset

    def run(
        self, device: str, strategy: str, interval: int | None, *, count: bool = False
    ) -> tuple[Run, int | None]:
        """One run of one cell: timed, then its memory and ETA errors; with ``count``, the device's sync count."""
        dev = torch.device(device)
        parts = build_workload(self.config, self.dataset, dev, self.grid.epochs)  # what train would build
        reads, marks, probe = SyncCounter(), Marks(self.grid.epochs), MemoryProbe(dev)
        counting = count_device_syncs(dev) if count else contextlib.nullcontext(DeviceSyncCount())
        kept = []  # once() leaves the recorded losses and the device's sync count here

        def once() -> None:
            marks.start()
            with counting as counted:
                kept.append(STRATEGIES[strategy](parts, self.grid.epochs, interval, reads, marks))
            kept.append(counted)

        probe.start()
        seconds = measure(once, sync=sync_fn(dev), warmup=0, repeats=1).times[0]
        memory = probe.stop()  # before the records are dropped
        recorded, counted = kept
        eta = eta_error(marks, marks.start_time + seconds)
        run = Run(seconds, reads.count, len(recorded.values), memory, eta)
        return run, counted.count


def run_experiment(
    config: TrainConfig,
    grid: Grid,
    progress: Progress | None = None,
    stop: StopFlag | None = None,
    dataset: Dataset | None = None,
) -> LoggingExperiment:
    """Run the whole grid (see the module docstring) and return every measurement. ``dataset``: already
    loaded from ``config`` (default: load it here)."""
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S"), time.perf_counter()
    cells = grid.cells()
    total = len(cells) * (grid.repeats + 1)
    order, warm, runs = [], {}, {cell: [] for cell in cells}
    with torch_threads(grid.threads):
        bench = _Bench(config, grid, dataset if dataset is not None else load_dataset(config))
        costs = tuple(SyncCost(d, sync_round_trip(d)) for d in grid.devices)
        rng = random.Random(grid.order_seed)
        plan = [
            (repeat, cell) for repeat in range(grid.repeats + 1) for cell in rng.sample(cells, len(cells))
        ]
        with stop_on_sigint(stop) as flag:
            for repeat, cell in plan:
                if flag.requested:
                    break
                run, device_syncs = bench.run(*cell, count=repeat == 0)
                if repeat == 0:
                    warm[cell] = (run, device_syncs)
                else:
                    runs[cell].append(run)
                order.append((repeat, *cell))
                if progress is not None:
                    phase = "warm-up" if repeat == 0 else f"repeat {repeat}"
                    progress(
                        len(order),
                        total,
                        f"{cell[0]} {cell[1]} k={cell[2] or 'never'} {phase}: {run.seconds:.3f} s",
                    )
    results = tuple(_aggregate(cell, grid.epochs, warm[cell], runs[cell]) for cell in cells if runs[cell])
    return LoggingExperiment(
        grid=grid,
        config=config.to_dict(),
        cells=results,
        sync_costs=costs,
        order=tuple(order),
        device_names={d: describe_device(torch.device(d)) for d in grid.devices},
        torch_version=torch.__version__,
        wall_s=time.perf_counter() - t0,
        started=started,
        runs_planned=total,
        interrupted=len(order) < total,
    )


def _aggregate(cell, epochs: int, warm: tuple[Run, int | None], runs: list[Run]) -> CellResult:
    device, strategy, interval = cell
    warm_run, device_syncs = warm
    device_bytes = tuple(r.memory.device_peak_bytes for r in runs)
    return CellResult(
        device=device,
        strategy=strategy,
        interval=interval,
        epochs=epochs,
        records=warm_run.records,
        syncs=warm_run.syncs,
        device_syncs=device_syncs,
        times=Measurement(tuple(r.seconds for r in runs), f"{device} {strategy} {interval}"),
        host_bytes=tuple(r.memory.host_growth_bytes for r in runs),
        device_bytes=None if None in device_bytes else device_bytes,
        eta=tuple(r.eta for r in runs),
    )
