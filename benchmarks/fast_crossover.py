"""Where the fused CPU kernel stops paying: µs per full-batch epoch of the kernel (one core) vs the eager
step at 1 thread and at every core, by model size, with the FLOPs a step. devicelab.fast.plan's
MAX_STEP_FLOPS (the --fast auto limit) comes from this table.

    python benchmarks/fast_crossover.py               # medians of 3 short timings a row
    python benchmarks/fast_crossover.py --quick       # the small rows only

Run it on an idle machine: other busy processes slow the eager rows with several threads most.
"""

from __future__ import annotations

import argparse
import time

import torch

from devicelab.data import load_dataset
from devicelab.fast.plan import MAX_STEP_FLOPS, kernel_plan
from devicelab.timing import Measurement
from devicelab.training.config import TrainConfig
from devicelab.training.workload import build_workload

SLOTS = 100_000  # loss slots: the most epochs one timing runs
ROWS = [  # (data set, hidden widths, row repeats)
    ("iris", (32,), 1),
    ("iris", (64, 64), 1),
    ("iris", (128, 128), 1),
    ("digits", (64,), 1),
    ("digits", (128, 128), 1),
    ("digits", (512, 512), 1),
    ("digits", (1024, 1024), 3),
]


def seconds_per_epoch(epochs_fn, budget_s: float = 0.3, repeats: int = 3) -> Measurement:
    """Median of ``repeats`` timings of about ``budget_s`` each (after one warm-up epoch)."""
    epochs_fn(1)
    began = time.perf_counter()
    epochs_fn(1)
    count = max(1, int(budget_s / max(time.perf_counter() - began, 1e-7)))
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        epochs_fn(count)
        times.append((time.perf_counter() - began) / count)
    return Measurement(tuple(times))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="only the rows under 20 MFLOP a step")
    args = parser.parse_args()
    from devicelab.fast import cpu_fast_runner

    cores = torch.get_num_threads()
    print(f"full batch, SGD; kernel on one core, eager at 1 and {cores} threads (torch {torch.__version__})")
    print(
        f"{'data, hidden':28}{'MFLOP/step':>11}{'kernel µs':>11}{'eager-1 µs':>12}{f'eager-{cores} µs':>12}  auto"
    )
    for name, hidden, repeats in ROWS:
        config = TrainConfig(dataset=name, hidden=hidden, fast="on")
        work = build_workload(config, load_dataset(config), torch.device("cpu"), SLOTS, batch_factor=repeats)
        plan, why = kernel_plan(work, config)
        if plan is None:
            print(f"{name}, {hidden}: {why}")
            continue
        if args.quick and plan.step_flops > 20e6:
            continue
        runner, why = cpu_fast_runner(work, config)
        kernel = seconds_per_epoch(lambda k, r=runner: r.run(0, min(k, SLOTS), lambda: False))
        eager = {}
        for threads in (1, cores):
            torch.set_num_threads(threads)
            eager[threads] = seconds_per_epoch(lambda k, w=work: [w.run_epoch(0) for _ in range(k)])
        torch.set_num_threads(cores)
        auto = "kernel" if plan.step_flops <= MAX_STEP_FLOPS else "eager"
        print(
            f"{f'{name}, {hidden}, {len(work.x_train)} rows':28}{plan.step_flops / 1e6:11.2f}"
            f"{kernel.median * 1e6:11.0f}{eager[1].median * 1e6:12.0f}{eager[cores].median * 1e6:12.0f}  {auto}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
