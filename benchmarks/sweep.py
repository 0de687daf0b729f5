"""256 seed-workload models (64 init seeds × 4 learning rates) trained together by `devicelab sweep`, against
the same models trained one after another: (a) with the lesson's eager loop and (b) with `devicelab train`'s
own single-model path. Same device, one process, interleaved repeats; prints µs per model-epoch (median and
IQR of the repeats) and the ratios.

    python benchmarks/sweep.py                          # CPU, one thread, 2000 epochs, 3 repeats
    python benchmarks/sweep.py --layouts                # also every layout tried (see docs/sweep.md)
    python benchmarks/sweep.py --device cuda --json out.json

Rows (each model initialised as `devicelab train` would with its seed; data split seed 42):
  sweep numba / bmm     devicelab.sweep.run_sweep with that layout: all 256 models, all epochs, log points
                        every 100 epochs included (the kernel's compile or cache load is not: done at warm-up)
  lesson loop           devicelab.profile.loops.lesson_loop (loss.item() every epoch), a SAMPLE of --sample
                        models (one per learning rate first), per-model time extrapolated to 256 models
  devicelab train       devicelab.train(TrainConfig(lr, init_seed, device, threads=1)) one model at a time
                        (its default path: the fused numba kernel on the CPU), a SAMPLE, extrapolated
Two clocks: "wall" (perf_counter: for devicelab train the loop's own clock, result.wall_s) and "cpu" (this
thread's CPU time around the whole call: not inflated by other processes on a shared machine; for
devicelab train it includes the call's fixed costs: data, model, fast-path set-up, log points).
--layouts adds, at --layout-epochs epochs, every way of training the 256 models together that was tried:
vmap(functional_call) with autograd, baddbmm with autograd (the bmm layout), baddbmm with hand-written
gradients, all first layers as one wide matmul, the single-model numba kernel called once per model, and
the numba kernel with the models in SIMD lanes (the numba layout).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from devicelab.data import load_dataset
from devicelab.devices import resolve_device, synchronize
from devicelab.errors import UserError
from devicelab.profile.loops import lesson_loop
from devicelab.sweep import Grid, run_sweep
from devicelab.sweep.stack import stack_params
from devicelab.timing import Measurement
from devicelab.training.config import TrainConfig
from devicelab.training.loop import train
from devicelab.training.setup import build_model

LRS = (0.003, 0.01, 0.03, 0.1)


def clocks(fn):
    """(result, wall seconds, this thread's CPU seconds) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.thread_time()
    out = fn()
    return out, time.perf_counter() - wall, time.thread_time() - cpu


def sweep_row(base: TrainConfig, grid: Grid, layout: str) -> tuple[float, float]:
    result, _, cpu = clocks(lambda: run_sweep(base, grid, layout=layout))
    assert result.status == "completed"
    return result.wall_s, cpu


def lesson_row(base: TrainConfig, specs, device) -> tuple[float, float]:
    dataset = load_dataset(base)
    x, y, _, _ = dataset.tensors(device)
    wall = cpu = 0.0
    loss_fn = torch.nn.CrossEntropyLoss()
    for spec in specs:
        model = build_model(dataclasses.replace(base, init_seed=spec.seed), dataset).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=spec.lr)
        synchronize(device)
        _, w, c = clocks(lambda m=model, o=optimizer: lesson_loop(m, loss_fn, o, x, y, base.epochs))
        wall, cpu = wall + w, cpu + c
    return wall, cpu


def train_row(base: TrainConfig, specs) -> tuple[float, float, str]:
    wall = cpu = 0.0
    path = ""
    for spec in specs:
        result, _, c = clocks(
            lambda spec=spec: train(dataclasses.replace(base, lr=spec.lr, init_seed=spec.seed))
        )
        wall, cpu, path = wall + result.wall_s, cpu + c, result.path
    return wall, cpu, path


# --- the other layouts, measured with --layouts (plain SGD, full batch, the seed workload's 4-10-3 MLP) ---


def vmap_layout(models, lrs, x, y, epochs):
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    params, _ = stack_module_state(models)
    base = models[0].to("meta")
    lr = {k: lrs.view(-1, *([1] * (v.dim() - 1))) for k, v in params.items()}

    def loss_of(p, xb, yb):
        return F.cross_entropy(functional_call(base, (p,), (xb,)), yb)

    step = vmap(grad_and_value(loss_of), in_dims=(0, None, None))
    losses = torch.zeros(len(models), epochs)
    for e in range(epochs):
        grads, loss = step(params, x, y)
        params = {k: params[k] - lr[k] * grads[k] for k in params}
        losses[:, e] = loss
    return losses


def bmm_analytic_layout(models, lrs, x, y, epochs, wide: bool = False):
    """Forward and backward written out: z1 = x W1ᵀ + b1, h = relu(z1), z2 = h W2ᵀ + b2, softmax CE.
    ``wide``: every model's first layer as one (n, 4) @ (4, M·10) matmul and its gradient as one too."""
    w1, b1, w2, b2 = (p.contiguous() for p in stack_params(models, x.device))
    m, n = w1.shape[0], x.shape[0]
    onehot = F.one_hot(y, w2.shape[1]).float().expand(m, n, -1)
    lr = lrs.float()
    losses = torch.zeros(m, epochs, device=x.device)
    xt = x.t().contiguous()
    for e in range(epochs):
        if wide:  # (n, 4) @ (4, M*10) -> (n, M, 10) -> (M, n, 10)
            z1 = (x @ w1.reshape(m * w1.shape[1], -1).t()).view(n, m, -1).transpose(0, 1) + b1.unsqueeze(1)
        else:
            z1 = torch.baddbmm(b1.unsqueeze(1), x.expand(m, n, -1), w1.transpose(1, 2))
        h = z1.clamp_min(0)
        z2 = torch.baddbmm(b2.unsqueeze(1), h, w2.transpose(1, 2))
        logp = z2.log_softmax(dim=2)
        losses[:, e] = -(logp * onehot).sum(dim=(1, 2)) / n
        d2 = (logp.exp() - onehot) / n
        g_w2 = torch.bmm(d2.transpose(1, 2), h)
        d1 = torch.bmm(d2, w2) * (z1 > 0)
        if wide:  # (4, n) @ (n, M*10)
            g_w1 = (xt @ d1.transpose(0, 1).reshape(n, -1)).view(-1, m, w1.shape[1]).permute(1, 2, 0)
        else:
            g_w1 = torch.bmm(d1.transpose(1, 2), x.expand(m, n, -1))
        w1.sub_(lr.view(-1, 1, 1) * g_w1)
        b1.sub_(lr.view(-1, 1) * d1.sum(1))
        w2.sub_(lr.view(-1, 1, 1) * g_w2)
        b2.sub_(lr.view(-1, 1) * d2.sum(1))
    return losses


def numba_per_model_layout(models, lrs, x, y, epochs):
    """devicelab's single-model fused kernel (devicelab.fast.kernel.train_epochs) once per model."""
    from devicelab.fast import kernel

    xs, ys = np.ascontiguousarray(x.numpy()), y.numpy().astype(np.int64)
    losses = np.zeros((len(models), epochs), np.float32)
    widths = np.array([4, 10, 3], np.int64)
    for i, model in enumerate(models):
        theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy().copy()
        zeros = np.zeros_like(theta)
        hyper = np.array([float(lrs[i]), 0, 0, 0.9, 0.999, 1e-8])
        kernel.train_epochs(theta, zeros, zeros.copy(), zeros.copy(), widths, xs, ys, np.zeros(0, np.float32),
                            np.zeros((0, 0), np.int64), 1 << 30, losses[i], 0, 0, 0, hyper, 0)  # fmt: skip
    return losses


def layout_rows(
    base: TrainConfig, grid: Grid, epochs: int, repeats: int, device
) -> list[tuple[str, Measurement]]:
    dataset = load_dataset(base)
    x, y, _, _ = dataset.tensors(device)
    specs = grid.models()
    lrs = torch.tensor([s.lr for s in specs], device=device)

    def fresh():
        return [build_model(dataclasses.replace(base, init_seed=s.seed), dataset).to(device) for s in specs]

    config = dataclasses.replace(base, epochs=epochs, log_every=epochs)
    layouts = {
        "vmap(functional_call) + autograd": lambda: vmap_layout(fresh(), lrs, x, y, epochs),
        "baddbmm + autograd (bmm layout)": lambda: run_sweep(config, grid, layout="bmm"),
        "baddbmm, hand-written gradients": lambda: bmm_analytic_layout(fresh(), lrs, x, y, epochs),
        "one wide first-layer matmul": lambda: bmm_analytic_layout(fresh(), lrs, x, y, epochs, wide=True),
    }
    if device.type == "cpu":
        layouts["numba, one call per model"] = lambda: numba_per_model_layout(
            fresh(), lrs.cpu(), x, y, epochs
        )
        layouts["numba, models in SIMD lanes"] = lambda: run_sweep(config, grid, layout="numba")
    times: dict[str, list[float]] = {name: [] for name in layouts}
    for fn in layouts.values():  # warm-up (compiles)
        fn()
    for _ in range(repeats):
        for name, fn in layouts.items():
            synchronize(device)
            times[name].append(clocks(lambda fn=fn: (fn(), synchronize(device)))[2])
    return [(name, Measurement(tuple(t), name)) for name, t in times.items()]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=4, help="models of the one-by-one rows (default: 4)")
    parser.add_argument("--layouts", action="store_true", help="also time every layout tried")
    parser.add_argument("--layout-epochs", type=int, default=200)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(1)
    base = TrainConfig(epochs=args.epochs, device=str(device), threads=1, quiet=True, log_every=100)
    grid = Grid(lrs=LRS, seeds=tuple(range(args.seeds)), hiddens=((10,),))
    n_models = len(grid)
    # the sample: one model per learning rate, then more seeds (grid order is lr-major)
    specs = grid.models()
    sample = [specs[(i % len(LRS)) * args.seeds + i // len(LRS)] for i in range(args.sample)]
    layouts = ("numba", "bmm") if device.type == "cpu" else ("bmm",)
    load_before = os.getloadavg()
    warm = dataclasses.replace(base, epochs=200)
    for layout in layouts:  # warm-up: numba's compile or cache load, torch's first calls
        run_sweep(warm, grid, layout=layout)
    lesson_row(warm, sample[:1], device)
    train_row(warm, sample[:1])
    rows: dict[str, dict[str, list[float]]] = {}

    def add(name: str, wall: float, cpu: float, models: int) -> None:
        per = 1e6 / (models * args.epochs)
        row = rows.setdefault(name, {"wall": [], "cpu": []})
        row["wall"].append(wall * per)
        row["cpu"].append(cpu * per)

    path = ""
    for _ in range(args.repeats):
        for layout in layouts:
            add(f"sweep, {layout} layout", *sweep_row(base, grid, layout), n_models)
        add(f"lesson loop x{args.sample}", *lesson_row(base, sample, device), len(sample))
        wall, cpu, path = train_row(base, sample)
        add(f"devicelab train x{args.sample}", wall, cpu, len(sample))
    load_after = os.getloadavg()
    lesson = Measurement(tuple(rows[f"lesson loop x{args.sample}"]["cpu"]))
    print(
        f"{n_models} seed-workload models ({args.seeds} seeds x {len(LRS)} lrs), {args.epochs} epochs on {device}, "
        f"1 thread, {args.repeats} repeats; torch {torch.__version__}; load average {load_before[0]:.1f} -> "
        f"{load_after[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print("µs per model-epoch (medians; one-by-one rows: a sample, extrapolated per model)")
    header = f"{'':28}{'cpu':>9}{'IQR':>8}{'wall':>9}{'IQR':>8}{'lesson/this (cpu)':>19}{'(wall)':>9}"
    print(header)
    lesson_wall = Measurement(tuple(rows[f"lesson loop x{args.sample}"]["wall"]))
    out = []
    for name, row in rows.items():
        cpu, wall = Measurement(tuple(row["cpu"])), Measurement(tuple(row["wall"]))
        label = name + (f" ({path})" if name.startswith("devicelab train") else "")
        print(
            f"{label:28}{cpu.median:9.2f}{cpu.iqr:8.2f}{wall.median:9.2f}{wall.iqr:8.2f}"
            f"{lesson.median / cpu.median:18.1f}x{lesson_wall.median / wall.median:8.1f}x"
        )
        out.append({"name": name, "cpu_us": row["cpu"], "wall_us": row["wall"]})
    if args.layouts:
        print(
            f"\nlayouts, {n_models} models together, {args.layout_epochs} epochs, µs per model-epoch (cpu clock)"
        )
        for name, m in layout_rows(base, grid, args.layout_epochs, args.repeats, device):
            per = 1e6 / (n_models * args.layout_epochs)
            print(
                f"  {name:36}{m.median * per:9.2f}{m.iqr * per:8.2f}{lesson.median / (m.median * per):9.1f}x"
            )
            out.append({"name": f"layout: {name}", "cpu_us": [t * per for t in m.times]})
    if args.json:
        Path(args.json).write_text(
            json.dumps({"device": str(device), "epochs": args.epochs, "rows": out}, indent=2)
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as error:
        print(f"{sys.argv[0]}: error: {error.one_line()}", file=sys.stderr)
        sys.exit(2)
