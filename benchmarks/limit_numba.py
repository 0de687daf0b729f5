"""The physical-limit reference row: the seed workload (Iris 120x4, MLP 4-10-3 ReLU, cross-entropy, SGD
lr 0.01, full batch) as a hand-written numba loop, batch-major, fastmath, every epoch's loss kept. Beside it,
in the same process and on the same thread count: the lesson's loop (tests/seed_lesson.py) and
devicelab's fused-kernel runner (devicelab.fast, driven as the training loop drives it: a chunk up to each
log point, then the weights written back into the module).

    python benchmarks/limit_numba.py                       # 20000 epochs, 5 repeats, 1 thread
    python benchmarks/limit_numba.py --epochs 5000 --repeats 3

Prints median µs/epoch, the spread (IQR) of the repeats, and each row's speed-up over the lesson's loop;
compile times (numba's first compile, or its load from the disk cache) are printed apart.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from devicelab.data import load_dataset
from devicelab.fast import cpu_fast_runner
from devicelab.timing import Measurement
from devicelab.training.config import TrainConfig
from devicelab.training.workload import build_workload
from seed_lesson import lesson_data, lesson_model, lesson_train


def limit_kernel():
    """The hand-written loop, compiled (timed by the caller)."""
    import numba  # here, so that its import counts in the compile time

    @numba.njit(cache=False, fastmath=True)
    def train(w1, b1, w2, b2, xt, y, lr, losses):
        n_hidden, n_in = w1.shape
        n_out, n = w2.shape[0], xt.shape[1]
        h = np.empty((n_hidden, n), np.float32)
        z = np.empty((n_out, n), np.float32)
        dh = np.empty((n_hidden, n), np.float32)
        inv_n = np.float32(1.0 / n)
        for epoch in range(losses.shape[0]):
            for j in range(n_hidden):  # hidden layer, batch-major
                for c in range(n):
                    h[j, c] = b1[j]
                for k in range(n_in):
                    for c in range(n):
                        h[j, c] += w1[j, k] * xt[k, c]
                for c in range(n):
                    h[j, c] = max(h[j, c], np.float32(0.0))
            for j in range(n_out):
                for c in range(n):
                    z[j, c] = b2[j]
                for k in range(n_hidden):
                    for c in range(n):
                        z[j, c] += w2[j, k] * h[k, c]
            total = np.float32(0.0)
            for c in range(n):  # softmax cross-entropy; z becomes dloss/dz
                top = z[0, c]
                for j in range(1, n_out):
                    top = max(top, z[j, c])
                s = np.float32(0.0)
                for j in range(n_out):
                    z[j, c] = math.exp(z[j, c] - top)
                    s += z[j, c]
                total += math.log(s) - math.log(z[y[c], c])
                for j in range(n_out):
                    z[j, c] = z[j, c] / s * inv_n
                z[y[c], c] -= inv_n
            losses[epoch] = total * inv_n
            for k in range(n_hidden):  # backward into the hidden layer (before w2 changes)
                for c in range(n):
                    dh[k, c] = 0.0
                for j in range(n_out):
                    for c in range(n):
                        dh[k, c] += w2[j, k] * z[j, c]
                for c in range(n):
                    if h[k, c] <= 0:
                        dh[k, c] = 0.0
            for j in range(n_out):
                g = np.float32(0.0)
                for c in range(n):
                    g += z[j, c]
                b2[j] -= lr * g
                for k in range(n_hidden):
                    g = np.float32(0.0)
                    for c in range(n):
                        g += z[j, c] * h[k, c]
                    w2[j, k] -= lr * g
            for j in range(n_hidden):
                g = np.float32(0.0)
                for c in range(n):
                    g += dh[j, c]
                b1[j] -= lr * g
                for k in range(n_in):
                    g = np.float32(0.0)
                    for c in range(n):
                        g += dh[j, c] * xt[k, c]
                    w1[j, k] -= lr * g

    return train


def limit_seconds(train, epochs: int) -> tuple[float, float]:
    """(seconds, final loss) of the hand-written loop from the lesson's initial weights."""
    x_train, y_train, _, _ = lesson_data("cpu")
    model = lesson_model("cpu")
    w1, b1 = (t.detach().numpy().copy() for t in (model.fc1.weight, model.fc1.bias))
    w2, b2 = (t.detach().numpy().copy() for t in (model.fc2.weight, model.fc2.bias))
    xt = np.ascontiguousarray(x_train.numpy().T)
    losses = np.zeros(epochs, np.float32)
    start = time.perf_counter()
    train(w1, b1, w2, b2, xt, y_train.numpy(), np.float32(0.01), losses)
    return time.perf_counter() - start, float(losses[-1])


def runner_seconds(epochs: int, log_every: int = 100) -> tuple[float, float, float]:
    """(seconds, final loss, setup seconds) of devicelab's fused-kernel runner, log point by log point."""
    config = TrainConfig(epochs=epochs)
    work = build_workload(config, load_dataset(config), torch.device("cpu"), epochs)
    runner, why = cpu_fast_runner(work, config)
    if runner is None:
        raise SystemExit(f"the fused kernel does not apply: {why}")
    start = time.perf_counter()
    for epoch in range(0, epochs, log_every):
        runner.run(epoch, min(epoch + log_every, epochs), lambda: False)
        runner.sync_module()  # what the loop does at each log point
    return time.perf_counter() - start, float(work.losses[-1]), runner.setup_s


def lesson_seconds(epochs: int) -> tuple[float, float]:
    x_train, y_train, _, _ = lesson_data("cpu")
    model = lesson_model("cpu")
    losses, seconds = lesson_train(model, x_train, y_train, epochs)  # loss.item() every step
    return seconds, losses[-1]


def kernel_compile_seconds() -> tuple[float, float]:
    """(first compile, load from the disk cache) of devicelab's kernel, each in a fresh process sharing a
    new numba cache directory; numba's import included, torch's not (what a first and a second run pay)."""
    probe = (  # torch and devicelab first: their import is not the kernel's
        "import devicelab.fast.plan, time; t = time.perf_counter(); import devicelab.fast.kernel; "
        "print(time.perf_counter() - t)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = [
            float(
                subprocess.run(
                    [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(2)
        ]
    return runs[0], runs[1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cold, cached = kernel_compile_seconds()
    started = time.perf_counter()
    train = limit_kernel()
    limit_seconds(train, 1)  # numba compiles on the first call
    limit_compile = time.perf_counter() - started
    _, _, runner_setup = runner_seconds(100)  # warm-up; its setup_s is the kernel's compile or cache load
    lesson_seconds(min(args.epochs, 500))
    times: dict[str, list[float]] = {
        "lesson loop": [],
        "devicelab numba runner": [],
        "hand-written numba": [],
    }
    finals: dict[str, float] = {}
    for _ in range(args.repeats):  # interleaved, so drifting load hits every row alike
        for name, fn in (
            ("lesson loop", lesson_seconds),
            ("devicelab numba runner", lambda e: runner_seconds(e)[:2]),
            ("hand-written numba", lambda e: limit_seconds(train, e)),
        ):
            seconds, finals[name] = fn(args.epochs)
            times[name].append(seconds)
    print(
        f"seed workload, {args.epochs} epochs, {args.threads} CPU thread(s), {args.repeats} repeats "
        f"(torch {torch.__version__})"
    )
    print(f"{'':24}{'µs/epoch':>10}{'IQR µs':>9}{'lesson / this':>15}{'final loss':>12}")
    base = Measurement(tuple(times["lesson loop"])).median
    for name, values in times.items():
        m = Measurement(tuple(values), name)
        flag = "  (noisy: IQR > 10% of median)" if m.noisy else ""
        print(
            f"{name:24}{m.median / args.epochs * 1e6:10.2f}{m.iqr / args.epochs * 1e6:9.2f}"
            f"{base / m.median:14.1f}x{finals[name]:12.6f}{flag}"
        )
    print(
        f"compile, numba's import included: devicelab kernel {cold:.2f} s the first time, {cached:.2f} s from "
        f"numba's disk cache (fresh processes); hand-written loop {limit_compile:.2f} s (no cache); "
        f"runner setup in this process {runner_setup:.3f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
