"""Is the step overhead-bound or compute/memory-bound? Time it at growing sizes and see.

Horace He's test ("Making Deep Learning Go Brrrr"): if growing the work does not grow the runtime, the time
goes to overhead (Python, dispatch, kernel launches), not arithmetic. ``probe_regime`` times the real step
with the batch repeated ×1, ×4, ×16, ×64 and with the hidden widths ×4; ``decide_regime`` is a pure
function of those timings: it fits ``time = fixed + per_mac × MACs`` and asks what share of the step at
the user's size is the fixed part. The fit uses each size's fastest repeat: on a shared machine the
slower repeats measure the other processes as much as the step.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from devicelab.data import Dataset
from devicelab.devices import sync_fn
from devicelab.errors import one_line
from devicelab.timing import calibrate_number, measure
from devicelab.training.config import TrainConfig
from devicelab.training.workload import build_workload, forward_macs

# Loss-buffer slots of a profiled workload: the steps cycle over them (a step writes losses[i % slots]).
PROBE_BUFFER = 1024

OVERHEAD = "overhead-bound"
COMPUTE = "compute/memory-bound"
MIXED = "partly overhead-bound"

# The fixed part's share of the step at the user's size above which the step is overhead-bound,
# and below which it is compute/memory-bound; in between it is both.
OVERHEAD_SHARE = 2 / 3
COMPUTE_SHARE = 1 / 3


@dataclass(frozen=True)
class ScalePoint:
    label: str  # "batch ×4", "width ×4"
    batch: int
    hidden: tuple[int, ...]
    macs: int  # forward multiply-accumulates per step: the work
    seconds: float  # fastest repeat, per step: what the fit uses (least disturbed by other processes)
    median_s: float
    iqr_s: float


@dataclass(frozen=True)
class Regime:
    verdict: str  # OVERHEAD, COMPUTE or MIXED
    fixed_s: float  # fitted time per step that does not grow with the work
    per_mac_s: float  # fitted time per forward MAC
    fixed_share: float  # fixed_s / fitted time at the smallest work
    time_growth: float  # time at the largest work / time at the smallest
    work_growth: float  # largest work / smallest
    crossover: float | None  # work multiple at which the growing part equals the fixed part

    def to_dict(self) -> dict:
        return asdict(self)


def _fit_line(work: Sequence[float], seconds: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``seconds = a + b × work`` with ``a, b >= 0`` (noise can make either negative)."""
    n = len(work)
    mean_w, mean_t = sum(work) / n, sum(seconds) / n
    var_w = sum((w - mean_w) ** 2 for w in work)
    b = sum((w - mean_w) * (t - mean_t) for w, t in zip(work, seconds, strict=True)) / var_w if var_w else 0.0
    a = mean_t - b * mean_w
    if b < 0:
        return mean_t, 0.0
    if a < 0:  # through the origin
        return 0.0, sum(w * t for w, t in zip(work, seconds, strict=True)) / sum(w * w for w in work)
    return a, b


def decide_regime(work: Sequence[float], seconds: Sequence[float]) -> Regime:
    """The regime from step times ``seconds`` measured at amounts of work ``work`` (any unit)."""
    if len(work) != len(seconds) or len(work) < 2:
        raise ValueError("decide_regime needs at least two (work, seconds) points")
    a, b = _fit_line(work, seconds)
    order = sorted(range(len(work)), key=lambda i: work[i])
    small, large = order[0], order[-1]
    at_small = a + b * work[small]
    share = a / at_small if at_small > 0 else 1.0
    verdict = OVERHEAD if share >= OVERHEAD_SHARE else COMPUTE if share <= COMPUTE_SHARE else MIXED
    return Regime(
        verdict=verdict,
        fixed_s=a,
        per_mac_s=b,
        fixed_share=share,
        time_growth=seconds[large] / seconds[small] if seconds[small] > 0 else float("inf"),
        work_growth=work[large] / work[small] if work[small] > 0 else float("inf"),
        crossover=a / (b * work[small]) if b > 0 and work[small] > 0 else None,
    )


def suggestions(regime: Regime, device_type: str, threads: int) -> tuple[str, ...]:
    """What helps in this regime on this device (a pure function; the report prints it)."""
    tips = []
    if regime.verdict in (OVERHEAD, MIXED):
        if device_type == "cpu" and threads > 1:
            tips.append(
                f"use one CPU thread (--threads 1, or torch.set_num_threads(1)): with {threads} threads "
                "every tiny operator pays for waking and joining the others"
            )
        if device_type == "cuda":
            tips.append(
                "capture the whole step in a CUDA graph (torch.cuda.graphs): one launch replays every kernel"
            )
            tips.append("try --device cpu: a step this small may not need a GPU at all")
        room = (
            f"the growing part of the step only catches up with the fixed cost at about ×{regime.crossover:.0f} "
            "this work"
            if regime.crossover
            else "more work per step costs almost nothing"
        )
        tips.append(f"use a larger batch (more rows per step, fewer steps): {room}")
        tips.append(
            "train several models at once (torch.func.stack_module_state + vmap: a sweep of seeds or "
            "learning rates in about the time of one model)"
        )
    if regime.verdict in (COMPUTE, MIXED):
        tips.append(
            "time follows the work: do less of it or do it faster (bf16/fp16 autocast, TF32 on GPUs, "
            "a smaller model, a faster device)"
        )
    return tuple(tips)


@dataclass(frozen=True)
class RegimeProbe:
    points: tuple[ScalePoint, ...]
    regime: Regime
    suggestions: tuple[str, ...]
    device: str
    threads: int
    skipped: tuple[str, ...] = ()  # labels of sizes not run: they would not fit MAX_STEP_ELEMENTS

    def to_dict(self) -> dict:
        return {
            "device": self.device,
            "threads": self.threads,
            "points": [asdict(p) for p in self.points],
            **self.regime.to_dict(),
            "suggestions": list(self.suggestions),
            "skipped": list(self.skipped),
        }


# The most float32 elements one scaled step may hold (batch, activations, weights, gradients, optimizer
# state): 512 MiB. A large CSV's full batch ×64 would otherwise take tens of GB.
MAX_STEP_ELEMENTS = 1 << 27


def step_elements(config: TrainConfig, dataset: Dataset, batch_factor: int, width_factor: int) -> int:
    """About how many float32 elements the step of this scaled workload holds at once."""
    rows = len(dataset.x_train)
    rows = min(rows, config.batch_size) if config.batch_size else rows
    widths = [h * width_factor for h in config.hidden]
    sizes = [dataset.n_features, *widths, dataset.n_outputs]
    params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    activations = rows * batch_factor * (dataset.n_features + dataset.n_outputs + 2 * sum(widths))
    return activations + 4 * params  # weights, gradients and two Adam moments


def _time_point(
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device,
    batch_factor: int,
    width_factor: int,
    label: str,
) -> ScalePoint:
    work = build_workload(  # the run's data path: rows too large for the device stay in host memory
        config,
        dataset,
        device,
        PROBE_BUFFER,
        batch_factor=batch_factor,
        width_factor=width_factor,
        data="auto",
    )
    step = work.repeated_step()
    counter = iter(range(1 << 62))

    def one_step() -> None:
        step(next(counter))

    sync = sync_fn(device)
    number = calibrate_number(one_step, sync=sync, target_s=0.02, max_number=2000)
    timing = measure(one_step, sync=sync, warmup=1, repeats=5, number=number)
    hidden = tuple(m.out_features for m in work.model.modules() if isinstance(m, torch.nn.Linear))[:-1]
    macs = forward_macs(work.model, work.batch)
    return ScalePoint(label, work.batch, hidden, macs, timing.min, timing.median, timing.iqr)


def probe_regime(
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device,
    *,
    batch_factors: Sequence[int] = (1, 4, 16, 64),
    width_factor: int = 4,
    max_elements: int = MAX_STEP_ELEMENTS,
) -> RegimeProbe | None:
    """Time devicelab's step at each batch factor, and at the hidden widths times ``width_factor``.
    Sizes above ``max_elements`` (``step_elements``) are skipped, except the user's own (×1); None when
    fewer than two sizes are left to compare."""
    sizes = [(k, 1, f"batch ×{k}") for k in batch_factors]
    sizes += [(1, width_factor, f"width ×{width_factor}")] if width_factor > 1 else []
    fits = [(b, w) == (1, 1) or step_elements(config, dataset, b, w) <= max_elements for b, w, _ in sizes]
    points, failed = [], []
    for size, ok in zip(sizes, fits, strict=True):
        if not ok:
            continue
        try:
            points.append(_time_point(config, dataset, device, *size))
        except Exception as error:  # out of memory at a larger size, ...: that size is skipped, with why
            failed.append(f"{size[2]} ({one_line(error)})")
    if len(points) < 2:
        return None
    regime = decide_regime([p.macs for p in points], [p.seconds for p in points])
    threads = torch.get_num_threads()
    skipped = (*(label for (_, _, label), ok in zip(sizes, fits, strict=True) if not ok), *failed)
    tips = suggestions(regime, device.type, threads)
    return RegimeProbe(tuple(points), regime, tips, str(device), threads, skipped)
