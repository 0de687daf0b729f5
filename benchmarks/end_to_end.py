"""The lesson's script as a process vs `devicelab train` as a process, on the seed workload: everything a
user waits for (Python and torch start-up, data, compile, 20000 epochs, the plot, the run folder).

    python benchmarks/end_to_end.py                 # 20000 epochs, 3 repeats of each row, interleaved
    python benchmarks/end_to_end.py --epochs 5000 --repeats 5

Rows (each a fresh process; medians and quartiles of the wall clock around it):
  lesson (torch threads)    tests/seed_lesson.py as the lesson runs it: loss.item() every step, a print
                            every 100 epochs, the loss plot saved; torch's default thread count
  lesson (1 thread)         the same with torch.set_num_threads(1)
  devicelab train, cold     `devicelab train --device cpu` with an empty numba cache (a first run: the
                            fast path's kernel is compiled)
  devicelab train, cached   the same with the cache the cold run left (every later run)
Ratios are against the lesson with torch's default threads (what the lesson's reader runs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"

LESSON = """
import sys, time
sys.path.insert(0, {tests!r})
import torch
if {one_thread}:
    torch.set_num_threads(1)
from seed_lesson import lesson_data, lesson_model, lesson_train
x, y, _, _ = lesson_data("cpu")
losses, _ = lesson_train(lesson_model("cpu"), x, y, {epochs}, log=print)
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.plot(losses)
plt.savefig({plot!r})
"""


def timed(command: list[str], env: dict, cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="devicelab-e2e-")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    lesson = [sys.executable, "-c"]
    rows: dict[str, list[float]] = {}

    def lesson_row(name: str, one_thread: bool) -> None:
        code = LESSON.format(
            tests=str(TESTS), one_thread=one_thread, epochs=args.epochs, plot=f"{work}/l.png"
        )
        rows.setdefault(name, []).append(timed([*lesson, code], env, work))

    train = [sys.executable, "-m", "devicelab", "train", "--epochs", str(args.epochs), "--device", "cpu"]
    train += ["--quiet", "--runs-dir", f"{work}/runs"]
    for repeat in range(args.repeats):
        lesson_row("lesson (torch threads)", False)
        lesson_row("lesson (1 thread)", True)
        cold = {**env, "NUMBA_CACHE_DIR": f"{work}/numba-{repeat}"}  # empty: the kernel is compiled
        rows.setdefault("devicelab train, cold", []).append(timed(train, cold, work))
        rows.setdefault("devicelab train, cached", []).append(timed(train, cold, work))
        print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    base = statistics.median(rows["lesson (torch threads)"])
    print(f"seed workload end to end, {args.epochs} epochs, {args.repeats} repeats, {os.cpu_count()} CPUs")
    print(f"{'row':26} {'median s':>9} {'quartiles':>15} {'x lesson':>9}")
    for name, times in rows.items():
        median = statistics.median(times)
        q = statistics.quantiles(times, n=4) if len(times) > 1 else [median, median, median]
        print(f"{name:26} {median:9.2f} {q[0]:7.2f}-{q[2]:<7.2f} {base / median:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
