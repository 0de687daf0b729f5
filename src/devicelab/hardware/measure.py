"""``info --measure``: what the hardware really does, timed the way torch.utils.benchmark does it.

Every figure is a median over repeats with its quartiles, from ``devicelab.timing.measure`` (warm-up, then the
device is synchronized before each clock read), next to the theoretical peak where the device's properties
give one. ``sync_round_trip(device)`` is public: bench logging uses the same number.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from devicelab.devices import sync_fn
from devicelab.hardware.report import CpuInfo, Figure, GpuInfo, HardwareReport
from devicelab.timing import Measurement, calibrate_number, measure

MiB = 1 << 20
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# CPU flags that mean a dtype's matmul runs in hardware (AMX / AVX-512 / Arm extensions).
CPU_NATIVE = {"bf16": {"amx_bf16", "avx512_bf16", "bf16"}, "fp16": {"amx_fp16", "avx512_fp16", "asimdhp"}}
# fp32 lanes per FMA instruction by vector ISA, for the CPU's upper-bound peak.
CPU_FP32_LANES = (("avx512f", 16), ("avx2", 8), ("fma", 8), ("asimd", 4))


@dataclass(frozen=True)
class Plan:
    """Problem sizes and repeats for one device."""

    matmul_n: int
    copy_bytes: int
    transfer_bytes: int
    repeats: int
    target_s: float  # how long one repeat should last


def _largest(options: tuple[int, ...], fits: Callable[[int], bool]) -> int:
    """The first (largest) option that fits, else the smallest."""
    return next((o for o in options if fits(o)), options[-1])


def plan_for(device: torch.device, free_memory: int | None, quick: bool) -> Plan:
    """Sizes for ``device``; on an accelerator no step allocates more than a quarter of ``free_memory``
    (the bytes free on it now; None = unknown: the sizes for a 16 GiB+ card)."""
    if device.type == "cpu":
        return Plan(
            512 if quick else 1024, (16 if quick else 64) * MiB, 0, 5 if quick else 7, 0.03 if quick else 0.05
        )
    budget = free_memory // 4 if free_memory is not None else 1 << 62
    n = _largest((4096, 2048, 1024) if quick else (8192, 4096, 2048, 1024), lambda n: 3 * n * n * 4 <= budget)
    copy = _largest(((128,) if quick else (512, 128)) + (32, 8), lambda mib: 2 * mib * MiB <= budget) * MiB
    transfer = _largest(((32,) if quick else (128, 32)) + (8,), lambda mib: mib * MiB <= budget) * MiB
    return Plan(n, copy, transfer, 5 if quick else 9, 0.03 if quick else 0.05)


def _timed(fn: Callable[[], object], device: torch.device, plan: Plan, label: str) -> Measurement:
    sync = sync_fn(device)
    fn()  # first call: library handles, kernels, allocations
    number = calibrate_number(fn, sync=sync, target_s=plan.target_s)
    return measure(fn, sync=sync, warmup=2, repeats=plan.repeats, number=number, label=label)


def sync_round_trip(device: torch.device | str, *, repeats: int = 9) -> Measurement:
    """Seconds for one ``.item()`` on ``device`` with an empty queue: the cost of one host-device sync."""
    device = torch.device(device)
    value = torch.ones((), device=device)

    def read() -> float:
        return value.item()  # sync: this round trip is the thing being measured

    return _timed(read, device, Plan(0, 0, 0, repeats, 0.02), "sync_round_trip")


@contextlib.contextmanager
def _float32_precision(precision: str):
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def matmul_time(device: torch.device, dtype: str, plan: Plan) -> Measurement:
    n = plan.matmul_n
    a = torch.randn(n, n, device=device, dtype=DTYPES[dtype])
    b = torch.randn(n, n, device=device, dtype=DTYPES[dtype])
    out = torch.empty(n, n, device=device, dtype=DTYPES[dtype])
    with _float32_precision("high" if dtype == "tf32" else "highest"):
        return _timed(lambda: torch.matmul(a, b, out=out), device, plan, f"matmul_{dtype}")


def copy_time(device: torch.device, plan: Plan) -> Measurement:
    src = torch.empty(plan.copy_bytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    return _timed(lambda: dst.copy_(src), device, plan, "memory_bandwidth")


def transfer_time(device: torch.device, plan: Plan, direction: str, pinned: bool) -> Measurement:
    host = torch.ones(plan.transfer_bytes, dtype=torch.uint8)
    host = host.pin_memory() if pinned else host
    dev = torch.ones(plan.transfer_bytes, dtype=torch.uint8, device=device)
    src, dst = (host, dev) if direction == "h2d" else (dev, host)
    kind = "pinned" if pinned else "pageable"
    return _timed(lambda: dst.copy_(src, non_blocking=pinned), device, plan, f"{direction}_{kind}")


def pinned_options(device: torch.device) -> tuple[bool, ...]:
    """Pageable, and pinned where torch can pin host memory for the device (CUDA and ROCm; not MPS/XPU)."""
    return (False, True) if device.type == "cuda" else (False,)


def launch_back_to_back_time(device: torch.device, plan: Plan) -> Measurement:
    """Seconds per tiny kernel issued back to back: the host's cost of one launch while the queue stays busy
    (a throughput, not a latency: the launches overlap the kernels they queue)."""
    x = torch.zeros(1, device=device)
    return _timed(lambda: x.add_(1), device, plan, "launch_back_to_back")


def launch_and_sync_time(device: torch.device, plan: Plan) -> Measurement:
    """Seconds from launching one tiny kernel on an idle queue until the host sees it finished: the latency a
    step pays when the host waits on the device (launch + run + completion)."""
    x = torch.zeros(1, device=device)
    sync = sync_fn(device)

    def once() -> None:
        x.add_(1)
        sync()  # sync: waiting for this one kernel is the thing being measured

    return _timed(once, device, plan, "launch_and_sync")


def cpu_matmul_dtypes(cpu: CpuInfo) -> tuple[str, ...]:
    return ("fp32", *(d for d, flags in CPU_NATIVE.items() if flags & cpu.flags))


def cpu_fp32_peak(cpu: CpuInfo, threads: int) -> tuple[float, str] | None:
    """Upper bound: cores x max clock x 2 FMA pipes x lanes x 2 FLOP (pipes per core are not readable)."""
    lanes = next((n for flag, n in CPU_FP32_LANES if flag in cpu.flags), None)
    cores = min(threads, cpu.physical_cores or threads)
    if lanes is None or not cpu.max_mhz:
        return None
    flop = 2 * lanes * 2
    value = cores * cpu.max_mhz * 1e6 * flop / 1e12
    return (
        value,
        f"upper bound: {cores} cores x {cpu.max_mhz:.0f} MHz x {flop} FLOP/clock (2 FMA pipes assumed)",
    )


@dataclass(frozen=True)
class Target:
    """One device to measure and what its report says about it."""

    device: torch.device
    matmul_dtypes: tuple[str, ...]
    peaks: dict[str, tuple[float, str]]
    free_memory: int | None  # bytes free on the device (total when free is unknown); sizes the problems
    transfers: bool


def targets(report: HardwareReport) -> list[Target]:
    threads = report.budget.torch_threads or 1
    cpu_peak = cpu_fp32_peak(report.cpu, threads)
    found = [
        Target(
            torch.device("cpu"),
            cpu_matmul_dtypes(report.cpu),
            {"matmul_fp32": cpu_peak} if cpu_peak else {},
            None,
            False,
        )
    ]
    for gpu in report.gpus:
        if gpu.in_torch_arch_list is False:
            continue
        found.append(_gpu_target(gpu))
    return found


def _gpu_target(gpu: GpuInfo) -> Target:
    dtypes = ("fp32", *(d for d in ("tf32", "bf16", "fp16") if d in gpu.native_dtypes))
    peaks = {p.what: (p.value, p.basis) for p in gpu.peaks}
    free = gpu.free_memory_bytes if gpu.free_memory_bytes is not None else gpu.total_memory_bytes
    return Target(torch.device(gpu.device), dtypes, peaks, free, True)


def measure_device(target: Target, quick: bool, on_step: Callable[[str], None]) -> list[Figure]:
    """Every figure for one device, in the order the report shows them."""
    device, name = target.device, str(target.device)
    plan = plan_for(device, target.free_memory, quick)
    figures: list[Figure] = []

    def rate(what: str, timed: Callable[[], Measurement], work: float, unit: str, size: str) -> None:
        """Work per second; the slow quartile of the times is the low quartile of the rate."""
        on_step(f"{name}: {what}")
        m = timed()
        peak, basis = target.peaks.get(what, (None, None))
        low, high = work / m.q3, work / m.q1
        figures.append(
            Figure(name, what, unit, work / m.median, low, high, len(m.times), m.noisy, size, peak, basis)
        )

    def latency(what: str, timed: Callable[[], Measurement], size: str) -> None:
        on_step(f"{name}: {what}")
        m = timed()
        us = 1e6
        figures.append(
            Figure(
                name, what, "us", m.median * us, m.q1 * us, m.q3 * us, len(m.times), m.noisy, size, None, None
            )
        )

    flop = 2 * plan.matmul_n**3 / 1e12
    for dtype in target.matmul_dtypes:
        rate(
            f"matmul_{dtype}",
            lambda d=dtype: matmul_time(device, d, plan),
            flop,
            "TFLOP/s",
            f"n={plan.matmul_n}",
        )
    copied = f"{plan.copy_bytes // MiB} MiB copy"
    rate("memory_bandwidth", lambda: copy_time(device, plan), 2 * plan.copy_bytes / 1e9, "GB/s", copied)
    for direction, pinned in (
        itertools.product(("h2d", "d2h"), pinned_options(device)) if target.transfers else ()
    ):
        what = f"{direction}_{'pinned' if pinned else 'pageable'}"
        timed = functools.partial(transfer_time, device, plan, direction, pinned)
        rate(what, timed, plan.transfer_bytes / 1e9, "GB/s", f"{plan.transfer_bytes // MiB} MiB")
    latency("launch_back_to_back", lambda: launch_back_to_back_time(device, plan), "1-element add_")
    latency("launch_and_sync", lambda: launch_and_sync_time(device, plan), "add_ + synchronize")
    latency("sync_round_trip", lambda: sync_round_trip(device, repeats=plan.repeats), "one .item()")
    return figures


def _quiet(_: str) -> None:
    return None


def measure_report(
    report: HardwareReport, *, quick: bool = False, on_step: Callable[[str], None] = _quiet
) -> tuple[Figure, ...]:
    """Measure the CPU and every usable accelerator in ``report``."""
    return tuple(figure for target in targets(report) for figure in measure_device(target, quick, on_step))
