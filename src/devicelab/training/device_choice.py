"""Choosing where a run trains by timing a few epochs of *this* workload on each candidate.

A GPU is not always faster: the seed workload is overhead-bound (microseconds of arithmetic, a dozen
operator launches per step), so a CPU often wins. On the CPU the number of intra-op threads is a
candidate too: on a small shared CPU, tiny ops run many times slower with several threads than with one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch

from devicelab.data import Dataset
from devicelab.devices import available_devices, resolve_device, sync_fn
from devicelab.errors import UserError, one_line
from devicelab.threads import torch_threads
from devicelab.timing import calibrate_number, measure
from devicelab.training.config import TrainConfig

if TYPE_CHECKING:
    from devicelab.training.workload import BuildWorkload


@dataclass(frozen=True)
class Candidate:
    device: str
    threads: int
    s_per_epoch: float | None  # None when not timed (a single candidate) or ruled out
    error: str = ""  # why timing it failed, in one line: the device is ruled out

    @property
    def label(self) -> str:
        return f"{self.device} ({_threads(self.threads)})" if self.device == "cpu" else self.device


@dataclass(frozen=True)
class DeviceChoice:
    device: str
    threads: int
    reason: str
    candidates: tuple[Candidate, ...]

    def to_dict(self) -> dict:
        return {
            "device": self.device,
            "threads": self.threads,
            "reason": self.reason,
            "timed_us_per_epoch": {
                c.label: None if c.s_per_epoch is None else round(c.s_per_epoch * 1e6, 2)
                for c in self.candidates
            },
            "ruled_out": {c.label: c.error for c in self.candidates if c.error},
        }


TimeEpoch = Callable[[TrainConfig, Dataset, torch.device, int], float]


# Epochs per timed call of a fast path (it runs many epochs per call, as between two log points).
FAST_CHUNK = 20
# Optimizer steps in one timed epoch, at most: an epoch of more mini-batches is timed on its first
# MAX_TIMED_STEPS batches and scaled to the whole epoch, so that timing a device on a large data set
# costs a few steps, not a dozen whole epochs.
MAX_TIMED_STEPS = 8


def time_epoch(
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device,
    threads: int,
    *,
    build: BuildWorkload | None = None,
) -> float:
    """Median seconds per epoch of this workload on ``device`` with ``threads`` CPU threads, run the way
    ``devicelab train`` would run it there: the same data path (``data="auto"``: rows too large for the
    device are streamed from host memory, as the run would stream them) and its fast path where one
    applies, else the eager step. A throwaway model: the real one is built afterwards from the seed, so
    timing changes no result. ``build``: the run's workload builder (default: devicelab's MLP)."""
    from devicelab.training.runner import select_runner
    from devicelab.training.workload import build_workload

    build = build or partial(build_workload, config, dataset)
    with torch_threads(threads):  # timing leaves the process as it found it
        whole = build(device, FAST_CHUNK, data="auto")
        n, batch = whole.x_train.shape[0], whole.batch
        steps = -(-n // batch)
        work = whole.first_rows(MAX_TIMED_STEPS * batch)  # the whole epoch when it is short
        scale = steps / -(-work.x_train.shape[0] // batch)
        runner, _ = select_runner(work, config)
        chunk = 1 if runner.name == "eager" else FAST_CHUNK
        sync = sync_fn(device)
        fn = lambda: runner.run(0, chunk, _never)  # noqa: E731
        for _ in range(2):  # first steps allocate and, on a GPU, load kernels
            fn()
        number = calibrate_number(fn, sync=sync, target_s=0.01, max_number=100)
        # the best of two medians, so that a momentary disturbance does not decide (one build and one
        # capture a device: the run itself is the only other one)
        best = min(measure(fn, sync=sync, warmup=0, repeats=3, number=number).median for _ in range(2))
        return best / chunk * scale


def _never() -> bool:
    return False


def cpu_kernel_applies(config: TrainConfig, dataset: Dataset, user=None) -> bool:
    """Would ``devicelab train`` run this workload on the CPU in the fused (one-thread) kernel? Decided from
    the shape alone (``devicelab.fast.plan``), without compiling anything."""
    from devicelab.fast.plan import kernel_plan
    from devicelab.training.workload import build_workload

    if config.fast == "off" or importlib.util.find_spec("numba") is None:
        return False
    plan, _ = kernel_plan(build_workload(config, dataset, torch.device("cpu"), 1, user=user), config)
    return plan is not None


def candidates_for(
    config: TrainConfig, devices: Sequence[torch.device], default_threads: int
) -> list[Candidate]:
    cpu_threads = [config.threads] if config.threads else sorted({1, default_threads})
    found = []
    for device in devices:
        if device.type == "cpu":
            found += [Candidate("cpu", t, None) for t in cpu_threads]
        else:
            found.append(Candidate(str(device), config.threads or default_threads, None))
    return found


def choose_device(
    config: TrainConfig,
    dataset: Dataset,
    *,
    devices: Sequence[torch.device] | None = None,
    timer: TimeEpoch | None = None,
    default_threads: int | None = None,
    one_thread_kernel: Callable[[TrainConfig, Dataset], bool] | None = None,
    build: BuildWorkload | None = None,
) -> DeviceChoice:
    """``--device auto`` times every available device; a named device (resolved, or a UserError saying
    why it is not there) only has its CPU threads timed. Where the CPU would run the fused kernel, which
    uses one thread (``one_thread_kernel``, default: asks ``devicelab.fast``), the CPU is one candidate
    with one thread. A device whose timing fails (out of memory, a driver error, ...) is ruled out with its
    one-line reason. ``devices``, ``timer`` and ``one_thread_kernel`` can be injected; ``build``: the
    run's workload builder, timed by the default timer."""
    timer = timer or partial(time_epoch, build=build)
    if devices is None:
        devices = available_devices() if config.device == "auto" else [resolve_device(config.device)]
    default_threads = default_threads or torch.get_num_threads()
    options = candidates_for(config, devices, default_threads)
    kernel = config.threads is None and any(c.device == "cpu" for c in options)
    if kernel and (one_thread_kernel or cpu_kernel_applies)(config, dataset):
        options = [c for c in options if c.device != "cpu"] + [Candidate("cpu", 1, None)]
        if len(options) == 1:
            why = "the only device here" if config.device == "auto" else "asked for"
            reason = (
                f"cpu (1 thread): {why}; the fused kernel runs on one thread, so no thread count was timed"
            )
            return DeviceChoice("cpu", 1, reason, tuple(options))
    if len(options) == 1:
        only = options[0]
        why = "the only device here" if config.device == "auto" else "asked for"
        return DeviceChoice(only.device, only.threads, f"{only.label}: {why}", tuple(options))
    tried = [_timed(c, config, dataset, timer) for c in options]
    timed = [c for c in tried if not c.error]
    failed = "".join(f"; {c.label} ruled out ({c.error})" for c in tried if c.error)
    if not timed:
        raise UserError(
            f"no device could run this workload{failed}",
            hint="check the data and options, or name a device with --device",
        )
    finalists = _cpu_finalist(timed)
    best = min(finalists, key=lambda c: c.s_per_epoch)
    listing = ", ".join(f"{c.label} {c.s_per_epoch * 1e6:.0f} µs" for c in timed)
    said = _verdicts(best, finalists, timed)
    return DeviceChoice(
        best.device,
        best.threads,
        f"{best.label}: timed this workload per epoch: {listing}; " + "; ".join(said) + failed,
        tuple(tried),
    )


def _verdicts(best: Candidate, finalists: list[Candidate], timed: list[Candidate]) -> list[str]:
    """Why ``best`` beat the other devices (as they would run: the CPU with the thread count it would
    get), and (on the CPU) why this many threads."""
    said = []
    other_devices = [c for c in finalists if c.device != best.device]
    if other_devices:
        runner_up = min(other_devices, key=lambda c: c.s_per_epoch)
        said.append(f"{runner_up.s_per_epoch / best.s_per_epoch:.1f}x faster than {runner_up.label}")
    other_threads = [c for c in timed if c.device == best.device and c is not best]
    if other_threads and best.threads == 1:
        said.append(_ONE_THREAD_RULE)
    elif other_threads:
        single = min(other_threads, key=lambda c: c.threads)
        said.append(f"{best.threads} threads are {single.s_per_epoch / best.s_per_epoch:.1f}x faster than 1")
    return said


# More CPU threads must win clearly: a short timing cannot see the other processes that will compete
# for the cores later, and tiny ops whose threads wait for a busy core run many times slower than on
# one thread (design.md: the seed loop took 24 ms/epoch with 2 threads on a shared 2-core CPU, 0.39 with 1).
MULTI_THREAD_MARGIN = 1.5
_ONE_THREAD_RULE = (
    f"one thread unless more are at least {MULTI_THREAD_MARGIN}x faster (safer on a shared CPU)"
)


def _timed(candidate: Candidate, config: TrainConfig, dataset: Dataset, timer: TimeEpoch) -> Candidate:
    """The candidate timed; any failure rules the device out, with its reason in one line (never a
    traceback)."""
    device = torch.device(candidate.device)
    try:
        seconds = timer(config, dataset, device, candidate.threads)
    except Exception as error:  # out of memory, a driver or capture error, ...: this device cannot run it
        if device.type == "cuda":
            torch.cuda.empty_cache()  # what the failed attempt allocated goes back for the next candidate
        return Candidate(candidate.device, candidate.threads, None, one_line(error))
    return Candidate(candidate.device, candidate.threads, seconds)


def _cpu_finalist(timed: list[Candidate]) -> list[Candidate]:
    """The candidates with the CPU entered once, at the thread count it would run with."""
    cpu = [c for c in timed if c.device == "cpu"]
    if len(cpu) < 2:
        return timed
    single = min(cpu, key=lambda c: c.threads)
    multi = min((c for c in cpu if c is not single), key=lambda c: c.s_per_epoch)
    keep = multi if single.s_per_epoch >= MULTI_THREAD_MARGIN * multi.s_per_epoch else single
    return [c for c in timed if c.device != "cpu" or c is keep]


def _threads(n: int) -> str:
    return f"{n} thread" if n == 1 else f"{n} threads"
