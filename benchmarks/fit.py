"""devicelab.fit on the user's own modules, side by side with the loops a user writes, in one process,
interleaved repeats, medians, spread (IQR) and ratios.

    python benchmarks/fit.py                      # every part, one CPU thread
    python benchmarks/fit.py --part lesson --epochs 20000 --repeats 5 --json fit.json

Parts:
  lesson  the lesson's own ``class MLP`` (tests/seed_lesson.py) on its Iris split, full batch, SGD 0.01:
          the lesson's loop (loss.item() every step) vs devicelab.fit(model, ...) vs devicelab.train's
          built-in MLP (TrainConfig()). fit and train: the loop's clock (wall_s); compile time apart.
  cnn     a small CNN on the 8×8 digits (1797 rows, mini-batches of 64, SGD 0.05): a plain eager loop
          (randperm, index, step, loss.item() every step) vs devicelab.fit (eager, sync-free) vs skorch's
          NeuralNetClassifier(module).fit (same module, loss, SGD, batch size, epochs) when it is
          installed, and the step alone on one fixed batch (the floor any loop over this step has).
  rnn     the same four rows for an nn.RNN (hidden 32) on 2048 generated sine sequences of 20 steps.
  sweep   64 seeds of a small CNN on 32 and on 256 digits rows (full batch, SGD): torch.func
          (stack_module_state + vmap over functional_call, devicelab.sweep.func_models.FuncModels, the
          models in groups whose activations fit the caches) vs the same models one by one (LoopModels)
          and one model's step alone; per model-epoch.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import devicelab
from devicelab.timing import Measurement
from seed_lesson import lesson_data, lesson_model, lesson_train


class SmallCNN(nn.Module):
    def __init__(self, channels: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.fc = nn.Linear(channels * 16, 10)

    def forward(self, x):
        return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).flatten(1))


def digits(n: int | None = None):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data / 16, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(d.target)
    return (x, y) if n is None else (x[:n], y[:n])


def lesson_part(epochs: int, repeats: int) -> tuple[str, dict[str, list[float]], dict]:
    X, y, X_test, y_test = lesson_data("cpu")
    times: dict[str, list[float]] = {
        "lesson loop": [],
        "devicelab.fit (lesson's class)": [],
        "devicelab.train (built-in MLP)": [],
    }
    notes: dict = {"setup_s": []}
    for i in range(repeats + 1):  # the first round warms up (numba cache, allocations) and is dropped
        _, seconds = lesson_train(lesson_model("cpu"), X, y, epochs)
        fit = devicelab.fit(lesson_model("cpu"), X, y, X_test=X_test, y_test=y_test, epochs=epochs, threads=1)
        built = devicelab.train(devicelab.TrainConfig(epochs=epochs, device="cpu", threads=1, quiet=True))
        if i:
            times["lesson loop"].append(seconds / epochs)
            times["devicelab.fit (lesson's class)"].append(fit.wall_s / epochs)
            times["devicelab.train (built-in MLP)"].append(built.wall_s / epochs)
            notes["setup_s"].append(fit.setup_s)
        notes["fit path"], notes["train path"] = fit.path_reason, built.path_reason
    return f"lesson MLP class, Iris, full batch, {epochs} epochs, s per epoch", times, notes


class SmallRNN(nn.Module):
    """An Elman RNN over a sequence, its last hidden state to the classes."""

    def __init__(self, hidden: int = 32, classes: int = 4):
        super().__init__()
        self.rnn = nn.RNN(1, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


def sequences(n: int = 2048, length: int = 20, classes: int = 4):
    """Noisy sine waves of ``classes`` frequencies; the class is the frequency (generated, seeded)."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(classes, (n,), generator=g)
    t = torch.arange(length, dtype=torch.float32)
    phase = torch.rand(n, 1, generator=g) * 6.28
    x = torch.sin((0.3 + 0.25 * y[:, None]) * t + phase) + 0.3 * torch.randn(n, length, generator=g)
    return x.unsqueeze(-1), y


WORKLOADS = {  # name: (module class, data, title)
    "cnn": (SmallCNN, digits, "small CNN, 8x8 digits"),
    "rnn": (SmallRNN, sequences, "RNN (hidden 32), sine sequences of 20 steps"),
}


def plain_loop(model, x, y, epochs: int, batch: int, lr: float) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    losses = []
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for first in range(0, len(x), batch):
            rows = order[first : first + batch]
            loss = criterion(model(x[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())  # the user's loop: a host read every step
    return time.perf_counter() - start


def step_alone(model, x, y, epochs: int, batch: int, lr: float) -> float:
    """The floor: the same number of steps on one batch made once (no shuffle, no indexing, no read),
    plain SGD as ``p -= lr * grad``: what a step's arithmetic and autograd cost, whoever loops over it."""
    params = list(model.parameters())
    xb, yb = x[:batch].contiguous(), y[:batch]
    steps = epochs * -(-len(x) // batch)
    start = time.perf_counter()
    for _ in range(steps):
        grads = torch.autograd.grad(F.cross_entropy(model(xb), yb), params)
        with torch.no_grad():
            torch._foreach_add_(params, grads, alpha=-lr)
    return time.perf_counter() - start


def skorch_seconds(module: nn.Module, x, y, epochs: int, batch: int, lr: float) -> float:
    """skorch's ``NeuralNetClassifier(module).fit(X, y)``: the same module object, loss, SGD, batches."""
    from skorch import NeuralNetClassifier

    net = NeuralNetClassifier(
        module, max_epochs=epochs, batch_size=batch, lr=lr, optimizer=torch.optim.SGD,
        train_split=None, verbose=0, criterion=nn.CrossEntropyLoss,
    )  # fmt: skip
    start = time.perf_counter()
    net.fit(x, y)
    return time.perf_counter() - start


def module_part(epochs: int, repeats: int, kind: str = "cnn") -> tuple[str, dict[str, list[float]], dict]:
    cls, data, title = WORKLOADS[kind]
    x, y = data()
    batch, lr = 64, 0.05
    rows = {
        "plain eager loop, .item() each step": lambda m: plain_loop(m, x, y, epochs, batch, lr),
        "devicelab.fit (eager, sync-free)": lambda m: (
            devicelab.fit(m, x, y, epochs=epochs, batch_size=batch, lr=lr, threads=1, log_every=epochs).wall_s
        ),
        "step alone (floor: no loop, no shuffle)": lambda m: step_alone(m, x, y, epochs, batch, lr),
    }
    has_skorch = importlib.util.find_spec("skorch") is not None
    if has_skorch:
        rows["skorch NeuralNetClassifier"] = lambda m: skorch_seconds(m, x, y, epochs, batch, lr)
    times: dict[str, list[float]] = {name: [] for name in rows}
    notes: dict = {
        "skorch": "installed" if has_skorch else "not installed here: row skipped (pip install skorch)"
    }
    for i in range(repeats + 1):  # the first round warms up and is dropped; rows interleaved
        for name, run in rows.items():
            torch.manual_seed(i)
            seconds = run(cls())  # every row from the same initial weights
            if i:
                times[name].append(seconds / epochs)
        if i == 0:
            torch.manual_seed(0)
            notes["fit path"] = devicelab.fit(cls(), x, y, epochs=1, batch_size=batch, threads=1).path_reason
    median = {name: Measurement(tuple(t)).median for name, t in times.items() if t}
    fit_s, floor_s = (
        median["devicelab.fit (eager, sync-free)"],
        median["step alone (floor: no loop, no shuffle)"],
    )
    if "skorch NeuralNetClassifier" in median:
        skorch_s = median["skorch NeuralNetClassifier"]
        notes["fit vs skorch"] = (
            f"{skorch_s / fit_s:.2f}x (target >= 5x); the most any loop over this step could reach: "
            f"skorch / step alone = {skorch_s / floor_s:.2f}x"
        )
    notes["fit's loop over the step alone"] = f"{(fit_s - floor_s) / fit_s:.0%} of fit's time"
    steps = -(-len(x) // batch)
    return (f"{title} ({len(x)} rows), batches of {batch} ({steps} steps an epoch), {epochs} epochs, s per epoch",
            times, notes)  # fmt: skip


def sweep_part(
    epochs: int, repeats: int, rows: int, n_models: int = 64
) -> tuple[str, dict[str, list[float]], dict]:
    from devicelab.sweep.func_models import FuncModels, LoopModels, vmap_reason
    from devicelab.training.config import TrainConfig

    x, y = digits(rows)
    config = TrainConfig(epochs=epochs, hidden=(), lr=0.05, device="cpu")
    layouts = {  # name: (class, all models in one vmapped group)
        "one by one": (LoopModels, False),
        "torch.func vmap": (FuncModels, False),
        "torch.func vmap, all in one group": (FuncModels, True),
    }
    times: dict[str, list[float]] = {name: [] for name in layouts}

    def models():
        out = []
        for seed in range(n_models):
            torch.manual_seed(seed)
            out.append(SmallCNN(4))
        return out

    notes: dict = {"vmap": vmap_reason(models()[:2], x, y, "classification") or "applies", "rows": rows}
    for i in range(repeats + 1):
        for name, (cls, one_group) in layouts.items():
            trained = cls(
                models(), [0.05] * n_models, config, x, y, "classification", torch.Generator(), epochs
            )
            if one_group:
                trained.chunks = [slice(0, n_models)]
            elif cls is FuncModels:
                sizes = sorted({c.stop - c.start for c in trained.chunks}, reverse=True)
                notes["vmap groups"] = f"{len(trained.chunks)} of {sizes[0]} models (func_models.chunks)"
            start = time.perf_counter()
            trained.run(0, epochs)
            seconds = time.perf_counter() - start
            if i:
                times[name].append(seconds / (epochs * n_models))
    return (
        f"{n_models} seeds of a small CNN, {rows} digits rows, full batch, {epochs} epochs, s per model-epoch",
        times,
        notes,
    )


def ceiling(sweeps: dict[int, dict]) -> str:
    """Where the one-by-one time goes at the larger size: a model-step costs about ``a + b * rows`` (a:
    per-op overhead, which vmap removes; b: arithmetic a row), from the two sizes. vmap gains
    ``(a + b * rows) / (b * rows)`` by removing the overhead alone, more only where its batched kernels
    (one convolution of every model's channels) do the arithmetic faster than one model's."""
    (small, s_run), (large, l_run) = sorted(sweeps.items())
    t_small, t_large = (
        next(r["median_s"] for r in run["rows"] if r["name"] == "one by one") for run in (s_run, l_run)
    )
    b = (t_large - t_small) / (large - small)
    if b <= 0:
        return "\none by one: the times do not grow with the rows (noise); no split"
    a = t_small - b * small
    return (
        f"\none by one at {large} rows, split by the {small}-row run: per model-step {a * 1e6:.0f} µs of "
        f"overhead + {b * large * 1e6:.0f} µs of arithmetic; removing the overhead alone gains "
        f"{t_large / (b * large):.2f}x"
    )


def report(title: str, times: dict[str, list[float]], notes: dict) -> dict:
    rows = {name: Measurement(tuple(t), name) for name, t in times.items() if t}
    base_name = next(iter(rows))
    base = rows[base_name].median
    print(f"\n{title}")
    print(f"{'':40}{'median µs':>12}{'IQR µs':>10}{f'{base_name[:14]} / this':>22}")
    out = {"title": title, "rows": [], "notes": notes}
    for name, m in rows.items():
        flag = "  (noisy: IQR > 10% of median)" if m.noisy else ""
        print(f"{name:40}{m.median * 1e6:12.2f}{m.iqr * 1e6:10.2f}{base / m.median:21.2f}x{flag}")
        out["rows"].append({"name": name, **m.to_dict(), "ratio_first_over_this": base / m.median})
    for key, value in notes.items():
        if key == "setup_s" and value:
            value = f"{Measurement(tuple(value)).median:.3f} s (median; not in the µs above)"
        print(f"  {key}: {value}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("all", "lesson", "cnn", "rnn", "sweep"), default="all")
    parser.add_argument("--epochs", type=int, help="default: lesson 20000, cnn and rnn 5, sweep 5")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one CPU thread for every row (what devicelab picks on a small shared CPU)
    print(f"torch {torch.__version__}, 1 CPU thread, {args.repeats} repeats after a warm-up round")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs at the start")
    parts = [
        ("lesson", lesson_part, 20000, {}),
        ("cnn", module_part, 5, {"kind": "cnn"}),
        ("rnn", module_part, 5, {"kind": "rnn"}),
        ("sweep", sweep_part, 5, {"rows": 32}),  # a step of little arithmetic: launch overhead decides
        ("sweep", sweep_part, 5, {"rows": 256}),  # more arithmetic a step: vmap saves only the overhead
    ]
    results = []
    for name, part, default_epochs, kwargs in parts:
        if args.part in ("all", name):
            results.append(report(*part(args.epochs or default_epochs, args.repeats, **kwargs)))
    sweeps = {r["notes"]["rows"]: r for r in results if "rows" in r["notes"]}
    if len(sweeps) == 2:
        print(ceiling(sweeps))
    print(f"\nload average {os.getloadavg()[0]:.2f} (1 min) at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
