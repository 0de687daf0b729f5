"""How much the script profiler (``devicelab.profile.watch``) costs, and whether its numbers agree with
references measured beside it in the same process.

1. overhead outside the window: a lesson-style loop timed plain, and under a watch after its windows are
   done (full speed), in turn; the ratio plain / watched (≥ 0.98 is the target);
2. phases: the phases' sum per watched step against the uninstrumented step time the same watch measured
   (bare steps in turn with watched ones; medians of steps) and against a plain timing loop beside it
   (mean of its steps) (within 10%);
3. layers: each layer's forward+backward per step from the watch's global hooks against torch.profiler's
   per-operator times summed over the module's forward range (``record_function`` from plain hooks) and
   over the backward operators of the same autograd nodes (``sequence_nr``), on an MLP, a small CNN and
   a tiny transformer (within 15%).

    python benchmarks/profile_script.py [--repeats 5] [--threads 1]

Prints medians, spread and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from devicelab.profile.watch import StopProgram, Watch


def lesson():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 3))
    x, y = torch.rand(120, 4), torch.randint(0, 3, (120,))
    return model, x, y, nn.CrossEntropyLoss()


def mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    return model, torch.randn(512, 64), torch.randint(0, 10, (512,)), nn.CrossEntropyLoss()


def cnn():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip
    return model, torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,)), nn.CrossEntropyLoss()


def transformer():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True)
    model = nn.Sequential(nn.Linear(16, 128), nn.TransformerEncoder(layer, 1), nn.Linear(128, 1))
    return model, torch.randn(16, 64, 16), torch.randn(16, 64, 1), nn.MSELoss()


def make_step(model, x, y, loss_fn):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = []

    def step():
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    return step


def loop_seconds(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def run_watch(step, warmup: int, steps: int, layers: bool) -> Watch:
    watch = Watch(warmup=warmup, steps=steps, layers=layers, stop_after=True)
    with watch:
        try:
            for _ in range(warmup + 3 * steps + 2):
                step()
        except StopProgram:
            pass
    return watch


def overhead(repeats: int, n: int) -> None:
    step = make_step(*lesson())
    loop_seconds(step, 200)
    ratios = []
    for _ in range(repeats):
        plain = loop_seconds(step, n)
        watch = Watch(warmup=2, steps=20)
        with watch:
            for _ in range(2 + 3 * 20 + 2):
                step()
            assert watch.window == "done"
            after = loop_seconds(step, n)
        ratios.append(plain / after)
    print(f"1. outside the window: plain / watched speed, median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}, {repeats} repeats of {n} steps)")  # fmt: skip


def phases(repeats: int, steps: int) -> None:
    for name, build in (("lesson MLP", lesson), ("MLP 64-256-256-10", mlp), ("small CNN", cnn)):
        step = make_step(*build())
        loop_seconds(step, 20)
        own, plain_ratio = [], []
        for _ in range(repeats):
            plain = loop_seconds(step, steps)
            watch = run_watch(step, 2, steps, layers=False)
            total = statistics.median(watch.meter.step_seconds())  # medians: robust to other processes
            own.append(total / statistics.median(watch.baseline))
            plain_ratio.append(total / plain)
        print(f"2. {name}: phase sum / uninstrumented step of the same watch: median {statistics.median(own):.3f} "
              f"[{min(own):.3f}, {max(own):.3f}]; / a plain timing loop beside it: "
              f"{statistics.median(plain_ratio):.3f} [{min(plain_ratio):.3f}, {max(plain_ratio):.3f}]")  # fmt: skip


def reference_layers(model, x, y, loss_fn, steps: int) -> dict[str, float]:
    """torch.profiler: per step, each leaf's forward operators (inside a record_function range opened by
    plain forward hooks) plus the backward operators of the same autograd nodes (by sequence_nr); the
    median over the steps."""
    from torch.autograd.profiler import record_function
    from torch.profiler import profile

    from devicelab.profile.hooks import named_leaves
    from devicelab.profile.phases import _quiet_stderr

    called: set[int] = set()
    handles = [m.register_forward_pre_hook(lambda m, a: called.add(id(m))) for m in model.modules()]
    model(x)  # the leaves as the watch names them: modules called, none of whose children were
    for h in handles:
        h.remove()
    names = {id(m): n for n, m in named_leaves([model], lambda m: id(m) in called)}
    open_ranges, handles = {}, []

    def pre(m, a):
        open_ranges[id(m)] = record_function(f"layer::{names[id(m)]}").__enter__()

    def post(m, a, o):
        open_ranges.pop(id(m)).__exit__(None, None, None)

    for module in model.modules():
        if id(module) in names:
            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    step = make_step(model, x, y, loss_fn)
    step()
    with _quiet_stderr(), profile() as prof:
        for i in range(steps):
            with record_function(f"step::{i}"):
                step()
    for h in handles:
        h.remove()
    events = prof.events()

    def ancestors(e):
        parent, depth = e.cpu_parent, 1
        while parent is not None:
            yield parent, depth
            parent, depth = parent.cpu_parent, depth + 1

    def step_of(e) -> int:
        return next(
            int(p.name.removeprefix("step::")) for p, _ in ancestors(e) if p.name.startswith("step::")
        )

    by_seq: dict[int, str] = {}
    totals: dict[str, list[float]] = {n: [0.0] * steps for n in names.values()}
    for e in events:  # forward: the operators directly in a layer's range; their autograd nodes, at any depth
        if not e.name.startswith("aten::"):
            continue
        layer = next(((p, d) for p, d in ancestors(e) if p.name.startswith("layer::")), None)
        if layer is not None:
            name = layer[0].name.removeprefix("layer::")
            if layer[1] == 1:
                totals[name][step_of(e)] += e.cpu_time_total
            if e.sequence_nr >= 0:
                by_seq[e.sequence_nr] = name
    for e in events:  # backward: the engine's evaluation of those nodes
        if e.name.startswith("autograd::engine::evaluate_function") and e.sequence_nr in by_seq:
            totals[by_seq[e.sequence_nr]][step_of(e)] += e.cpu_time_total
    # the median step, as devicelab reports medians: robust to the machine's other processes
    return {n: statistics.median(t) / 1e6 for n, t in totals.items()}


def _watched_layers(watch) -> dict[str, float]:
    """Seconds per step of each layer row, forward + backward, as the watch reports them (median per call
    x calls per step, the hooks' own cost taken off)."""
    profile = watch.tape.profile()
    return {r.name: ((r.forward_s or 0.0) + (r.backward_s or 0.0)) * r.calls for r in profile.layers}


def layers(repeats: int, steps: int) -> None:
    for name, build in (("MLP", mlp), ("small CNN", cnn), ("tiny transformer", transformer)):
        ours_runs, ref_runs = [], []
        for _ in range(repeats):
            model, x, y, loss_fn = build()
            watch = run_watch(make_step(model, x, y, loss_fn), 2, steps, layers=True)
            ours_runs.append(_watched_layers(watch))
            ref_runs.append(reference_layers(*build(), steps))
        print(f"3. {name}: forward+backward µs per step, median of {repeats}")
        worst = 0.0
        for layer in ref_runs[0]:
            ours = statistics.median(r.get(layer, 0.0) for r in ours_runs) * 1e6
            ref = statistics.median(r[layer] for r in ref_runs) * 1e6
            ratio = ours / ref if ref else float("nan")
            if ref > 0.05 * sum(statistics.median(r[k] for r in ref_runs) * 1e6 for k in ref_runs[0]):
                worst = max(worst, abs(ratio - 1))
            print(f"   {layer:36s} devicelab {ours:9.1f}  torch.profiler {ref:9.1f}  ratio {ratio:5.2f}")
        print(f"   largest disagreement on layers with ≥5% of the time: {worst:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=("overhead", "phases", "layers"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    if args.only in (None, "overhead"):
        overhead(args.repeats, 1000)
    if args.only in (None, "phases"):
        phases(args.repeats, 50)
    if args.only in (None, "layers"):
        layers(args.repeats, 30)


if __name__ == "__main__":
    main()
