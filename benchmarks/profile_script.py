"""How much the script profiler (``devicelab.profile.watch``) costs, and whether its numbers agree with
references measured beside it in the same process.

1. overhead outside the window: a lesson-style loop (and a bigger MLP) timed plain, and under a watch
   after its windows are done (full speed), in pairs of blocks in turn; the ratio plain / watched (≥ 0.98
   is the target);
2. phases: the phases' sum per watched step (the watcher's own cost per phase switch, measured on empty
   calls through its wrapper, taken off) against the uninstrumented step time the same watch measured
   (bare steps in turn with watched ones; medians of steps), the same without taking that cost off, and
   against a plain timing loop beside it (mean of its steps) (within 10%);
3. layers: each layer's forward+backward per step from the watch's global hooks (their own cost,
   measured on probe modules through the same hooks, taken off; also shown left in) against
   torch.profiler's per-operator times summed over the module's forward range (``record_function`` from
   plain hooks) and over the backward operators of the same autograd nodes (``sequence_nr``) and the
   accumulation of the gradients they make for its parameters (``AccumulateGrad``, run right after), on an
   MLP, a small CNN and a tiny transformer (within 15%). The same model is measured in pairs of blocks
   in turn (a watch, then torch.profiler and a plain timer's forward alone; which goes first
   alternates), each block's median step, so that both sides of a ratio see the same machine: the
   ratio is taken within each pair, then its median and spread over the pairs. Also printed: the minor
   page faults per step under each (fresh memory touched the first time is in the time of the layer
   that touches it, and the profiler's own allocations make the model's land there more often).

The process runs with glibc's malloc thresholds fixed (``MALLOC_MMAP_THRESHOLD_`` at glibc's 64-bit maximum,
32 MiB, and ``MALLOC_TRIM_THRESHOLD_`` 2 GiB; it re-executes itself with them set) and 512 MiB of heap touched
once at start and freed (kept by the process, not given back): the header says so. Without this, every block
that grows the heap touches fresh pages, and torch.profiler's own records grow it all through its block: a
64-256-256-10 MLP took ~140-330 minor page faults a step under it (~0-50 without it) and its ``ReLU`` rows,
whose outputs land in the fresh pages, swung 70-560 µs there. With it, both sides take ~0 faults a step;
devicelab's measurement is not tuned, the machine is the same for both. ``--malloc-default`` keeps glibc's
defaults.

    python benchmarks/profile_script.py [--repeats 5] [--threads 1] [--only layers] [--malloc-default]

Prints medians, spread and ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
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


def median_step_seconds(step, n: int) -> float:
    """The median of ``n`` steps timed one by one: robust to the other processes of a shared machine."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_watch(step, warmup: int, steps: int, layers: bool) -> Watch:
    watch = Watch(warmup=warmup, steps=steps, layers=layers, stop_after=True)
    with watch:
        try:
            for _ in range(warmup + 3 * steps + 2):
                step()
        except StopProgram:
            pass
    return watch


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def overhead(repeats: int, n: int) -> None:
    """Pairs of blocks of ``n`` steps, in turn (which goes first alternates): plain, and under a watch
    whose windows are done (warm-up 0, windows of 5 steps), what a long script runs at after them; each
    block's median step."""
    for name, build in (("lesson MLP", lesson), ("MLP 64-256-256-10", mlp)):
        step = make_step(*build())
        loop_seconds(step, 100)
        ratios = []
        for i in range(repeats):
            times = {}
            for kind in ("plain", "watched") if i % 2 == 0 else ("watched", "plain"):
                if kind == "plain":
                    times[kind] = median_step_seconds(step, n)
                    continue
                watch = Watch(warmup=0, steps=5)
                with watch:
                    while watch.window != "done":
                        step()
                    times[kind] = median_step_seconds(step, n)
            ratios.append(times["plain"] / times["watched"])
        print(f"1. {name}, outside the window: plain / watched step time {_spread(ratios)} "
              f"({repeats} pairs of {n} steps, median step of each; target >= 0.98; {_load()})")  # fmt: skip


def phases(repeats: int, steps: int) -> None:
    for name, build in (("lesson MLP", lesson), ("MLP 64-256-256-10", mlp), ("small CNN", cnn)):
        step = make_step(*build())
        loop_seconds(step, 20)
        own, raw, plain_ratio, costs = [], [], [], []
        for _ in range(repeats):
            plain = loop_seconds(step, steps)
            watch = run_watch(step, 2, steps, layers=False)
            meter, bare = watch.meter, statistics.median(watch.baseline)  # medians: robust to other processes
            total = statistics.median(meter.step_seconds())
            cost = meter.switch_cost()
            per_step = meter.switches_per_step() * (cost.inner_s + cost.outer_s)
            own.append(total / bare)
            raw.append((total + per_step) / bare)  # about: the correction is taken off before the medians
            plain_ratio.append(total / plain)
            costs.append(per_step)
        print(f"2. {name}: phase sum / uninstrumented step of the same watch: {_spread(own)} (target within 10%); "
              f"without taking off the watcher's own cost (~{statistics.median(costs) * 1e6:.1f} µs a step): "
              f"{_spread(raw)}; phase sum / a plain timing loop beside it (mean of its steps): "
              f"{_spread(plain_ratio)}; {_load()}")  # fmt: skip


def minor_faults() -> int:
    """Minor page faults of this process so far: fresh memory touched the first time, which a layer's
    time then holds (a profiler's own allocations can change how often the model's outputs land there)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def reference_layers(model, x, y, loss_fn, steps: int) -> tuple[dict[str, float], float]:
    """torch.profiler: per step, each leaf's forward operators (inside a record_function range opened by
    plain forward hooks) plus the backward operators of the same autograd nodes (by sequence_nr); the
    median over the steps. Also the minor page faults per profiled step."""
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
        faults = minor_faults()
        for i in range(steps):
            with record_function(f"step::{i}"):
                step()
        faults = (minor_faults() - faults) / steps
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
    # backward: the engine's evaluation of those nodes, and of the accumulation of the gradients they make
    # for the layer's parameters (an AccumulateGrad node has no sequence_nr of the forward's; the engine runs
    # it as soon as it is ready, right after the node that made its gradient): a layer's backward in devicelab
    # holds it too, between its backward hooks (its own parameters' gradient work)
    last = None
    evaluated = [e for e in events if e.name.startswith("autograd::engine::evaluate_function")]
    for e in sorted(evaluated, key=lambda e: e.time_range.start):
        if e.sequence_nr in by_seq:
            last = by_seq[e.sequence_nr]
        elif "AccumulateGrad" not in e.name:
            last = None  # a node of no layer (the loss's): the accumulations after it are no layer's
        if last is not None:
            totals[last][step_of(e)] += e.cpu_time_total
    # the median step, as devicelab reports medians: robust to the machine's other processes
    return {n: statistics.median(t) / 1e6 for n, t in totals.items()}, faults


def plain_forward(model, x, y, loss_fn, steps: int) -> dict[str, float]:
    """A plain timer: each leaf's forward per step, from ``perf_counter`` in plain forward pre-hooks and
    forward hooks (no backward hooks, no profiler), median step. Beside torch.profiler's operator time,
    it also holds the Python of the module's own ``forward``, which a profiler's operators miss."""
    from devicelab.profile.hooks import named_leaves

    called: set[int] = set()
    handles = [m.register_forward_pre_hook(lambda m, a: called.add(id(m))) for m in model.modules()]
    model(x)
    for h in handles:
        h.remove()
    names = {id(m): n for n, m in named_leaves([model], lambda m: id(m) in called)}
    opened: dict[int, float] = {}
    totals: dict[str, list[float]] = {n: [0.0] * steps for n in names.values()}
    index = [0]

    def pre(m, a):
        opened[id(m)] = time.perf_counter()

    def post(m, a, o):
        totals[names[id(m)]][index[0]] += time.perf_counter() - opened.pop(id(m))

    handles = []
    for module in model.modules():
        if id(module) in names:
            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    step = make_step(model, x, y, loss_fn)
    step()
    for i in range(steps):
        index[0] = i
        step()
    for h in handles:
        h.remove()
    return {n: statistics.median(t) for n, t in totals.items()}


def _watched_layers(watch) -> tuple[dict[str, float], dict[str, float], object]:
    """Seconds per step of each layer row, forward + backward, as the watch reports them (median per call
    x calls per step, the hooks' own cost taken off), the same without taking it off, and that cost."""
    from devicelab.profile.layers import collect

    tape = watch.tape
    profile = tape.profile()  # takes the probe modules' tapes out

    def rows(p) -> dict[str, float]:
        return {r.name: ((r.forward_s or 0.0) + (r.backward_s or 0.0)) * r.calls for r in p.layers}

    raw = collect(tape.roots, tape.tapes, tape.clock, tape.steps, tape.backward_calls)
    return rows(profile), rows(raw), profile.hook_cost


def _paired(ours: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
    """Each layer's ratio devicelab / torch.profiler in one pair of blocks, and the whole model's."""
    out = {layer: ours.get(layer, 0.0) / r for layer, r in ref.items() if r > 0}
    out["(all layers)"] = sum(ours.values()) / sum(ref.values())
    return out


def layers(repeats: int, steps: int, models: tuple[str, ...] = ()) -> None:
    """Pairs of blocks on the same model, in turn (which goes first alternates): ``steps`` steps under a
    watch, then ``steps`` under torch.profiler; each block's median step. The ratios are taken within a
    pair (the two blocks minutes apart at most: seconds), then their median and spread over the pairs,
    so a change of the machine's load between blocks shows as spread, not as disagreement."""
    for name, build in (("MLP", mlp), ("small CNN", cnn), ("tiny transformer", transformer)):
        if models and build.__name__ not in models:
            continue
        model, x, y, loss_fn = build()
        make_step(model, x, y, loss_fn)()  # first-call costs out of both
        pairs, costs, ours_runs, raw_runs, ref_runs, plain_runs = [], [], [], [], [], []
        faults: dict[str, list[float]] = {"watch": [], "profiler": []}
        for i in range(repeats):
            kinds = ("watch", "profiler") if i % 2 == 0 else ("profiler", "watch")
            for kind in kinds:
                if kind == "profiler":
                    ref, per_step = reference_layers(model, x, y, loss_fn, steps)
                    ref_runs.append(ref)
                    faults["profiler"].append(per_step)
                    plain_runs.append(plain_forward(model, x, y, loss_fn, steps))
                    continue
                step, calls = make_step(model, x, y, loss_fn), [0]

                def counted(step=step, calls=calls):
                    calls[0] += 1
                    step()

                before = minor_faults()
                ours, raw, cost = _watched_layers(run_watch(counted, 2, steps, True))
                faults["watch"].append((minor_faults() - before) / calls[0])
                ours_runs.append(ours)
                raw_runs.append(raw)
                costs.append(cost)
            pairs.append((_paired(ours_runs[-1], ref_runs[-1]), _paired(raw_runs[-1], ref_runs[-1])))
        c = {k: statistics.median(getattr(x, k) for x in costs) * 1e6 for k in vars(costs[0])}
        print(f"3. {name}: forward+backward µs per step (median step of a block, median over {repeats} pairs "
              f"of blocks of {steps} steps, watch and torch.profiler in turn); ratio: median [min, max] over "
              "the pairs; hooks' cost taken off per call: "
              + ", ".join(f"{k} {v:.1f} µs" for k, v in c.items()) + f"; {_load()}")  # fmt: skip
        total_ref = sum(statistics.median(r[k] for r in ref_runs) for k in ref_runs[0])
        worst = worst_raw = 0.0
        for layer in [*ref_runs[0], "(all layers)"]:
            if layer == "(all layers)":
                ours = statistics.median(sum(r.values()) for r in ours_runs)
                raw = statistics.median(sum(r.values()) for r in raw_runs)
                ref = statistics.median(sum(r.values()) for r in ref_runs)
            else:
                ours = statistics.median(r.get(layer, 0.0) for r in ours_runs)
                raw = statistics.median(r.get(layer, 0.0) for r in raw_runs)
                ref = statistics.median(r[layer] for r in ref_runs)
            plain = statistics.median(r.get(layer, 0.0) for r in plain_runs) if layer in ref_runs[0] else None
            ratios = [p[layer] for p, _ in pairs if layer in p]
            raw_ratios = [q[layer] for _, q in pairs if layer in q]
            if not ratios:
                print(
                    f"   {layer:36s} devicelab {ours * 1e6:9.1f}  torch.profiler {ref * 1e6:9.1f}  (no ratio)"
                )
                continue
            ratio, raw_ratio = statistics.median(ratios), statistics.median(raw_ratios)
            if layer != "(all layers)" and ref > 0.05 * total_ref:
                worst, worst_raw = max(worst, abs(ratio - 1)), max(worst_raw, abs(raw_ratio - 1))
            print(f"   {layer:36s} devicelab {ours * 1e6:9.1f} (hooks' cost left in: {raw * 1e6:9.1f})  "
                  f"torch.profiler {ref * 1e6:9.1f}  ratio {_spread(ratios)} (cost left in: {raw_ratio:.2f})"
                  + (f"; a plain timer's forward alone {plain * 1e6:.1f}" if plain is not None else ""))  # fmt: skip
        print(f"   largest disagreement on layers with ≥5% of the time (median ratio over the pairs): {worst:.0%} "
              f"(target 15%; hooks' cost left in: {worst_raw:.0%}); {_load()}")  # fmt: skip
        print("   minor page faults per step (median [min, max] over the blocks): under the watch (all its "
              f"windows) {_spread(faults['watch'])}, under torch.profiler {_spread(faults['profiler'])}")  # fmt: skip


# glibc: blocks up to 32 MiB (its 64-bit maximum) from the heap, not mmap; the heap's top given back to the
# system only past 2 GiB free; PREFAULT_MIB of heap touched at start, so that neither side faults pages in
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(2 << 30)}
PREFAULT_MIB = 512


def prefault(mib: int) -> None:
    """Touch ``mib`` MiB of heap in 16 MiB blocks (under the mmap threshold), then free it: with the trim
    threshold above it, the process keeps those pages, and later allocations reuse them."""
    blocks = [bytearray(16 << 20) for _ in range(mib // 16)]  # zero-filled: every page touched
    del blocks


def fixed_malloc(argv: list[str]) -> str:
    """Re-execute this process with ``MALLOC_ENV`` (glibc reads it at start-up only), once; the header
    line that says what the process runs with."""
    if "--malloc-default" in argv or platform.libc_ver()[0] != "glibc":
        return "glibc malloc: default, adaptive thresholds"
    if any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        os.execve(
            sys.executable, [sys.executable, os.path.abspath(__file__), *argv], {**os.environ, **MALLOC_ENV}
        )
    prefault(PREFAULT_MIB)
    return (
        "glibc malloc, the same for both sides: "
        + ", ".join(f"{k}={v}" for k, v in MALLOC_ENV.items())
        + f", {PREFAULT_MIB} MiB of heap touched at start and kept"
    )


def main() -> None:
    malloc = fixed_malloc(sys.argv[1:])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--malloc-default", action="store_true", help="keep glibc's adaptive malloc thresholds"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=("overhead", "phases", "layers"))
    parser.add_argument(
        "--model", action="append", choices=("mlp", "cnn", "transformer"), help="layers: only these models"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPUs, {_load()}; {malloc}")
    if args.only in (None, "overhead"):
        overhead(3 * args.repeats, 300)
    if args.only in (None, "phases"):
        phases(args.repeats, 100)
    if args.only in (None, "layers"):
        layers(args.repeats, 30, tuple(args.model or ()))


if __name__ == "__main__":
    main()
