"""``devicelab bench speed``: the parser and the thin run function (registered by ``commands/bench.py``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devicelab.commands._options import add_tensorboard_option, check_output_file
from devicelab.commands._workload import add_workload_arguments, adjust_option, config_from_args
from devicelab.errors import UserError

DEFAULT_EPOCHS = 20000
DEFAULT_REPEATS = 3
QUICK = {"epochs": 300, "repeats": 3}
# devicelab.bench.speed_rows.ROW_NAMES, spelled out so that `devicelab --help` does not import torch
# (a test keeps the two equal)
ROW_NAMES = (
    "lesson",
    "eager",
    "fast",
    "lightning",
    "skorch",
    "jax-jit",
    "jax-scan",
    "lesson-default-threads",
)
# --quick leaves out the lesson at torch's default threads: on a small shared CPU it takes 10-25 ms an epoch
QUICK_ROWS = ROW_NAMES[:-1]


def register(benches: argparse._SubParsersAction) -> None:
    speed = benches.add_parser(
        "speed",
        help="the lesson's loop vs devicelab's trainer (eager, fast) and the peers installed, per device",
        description=(
            "The same workload trained by the lesson's loop, devicelab eager, devicelab fast and the peers "
            "installed (PyTorch Lightning, skorch, JAX jit step, JAX lax.scan), on each device: median and "
            "IQR of µs per epoch over interleaved repeats, the ratio to the lesson's loop, compile/set-up "
            "time apart, and the final loss of every row checked against the lesson's."
        ),
    )
    add_workload_arguments(speed, epochs_default=DEFAULT_EPOCHS)
    adjust_option(
        speed,
        "epochs",
        default=None,
        help=f"epochs per run (default: {DEFAULT_EPOCHS}; {QUICK['epochs']} with --quick)",
    )
    adjust_option(
        speed,
        "threads",
        help="CPU threads for every row (default: devicelab's own choice per device; the lesson's loop also "
        "runs with torch's default count when that differs)",
    )
    adjust_option(speed, "batch_size", help="not supported here: bench speed times full-batch training")
    grid = speed.add_argument_group("benchmark")
    grid.add_argument(
        "--device",
        dest="devices",
        action="append",
        help="cpu, cuda, cuda:N, ... (repeat or comma-separate; default: auto = the CPU and every GPU here)",
    )
    grid.add_argument(
        "--rows",
        help=f"comma-separated subset of {','.join(ROW_NAMES)} (default: all; the last runs on a CPU whose "
        "torch default thread count differs from devicelab's choice)",
    )
    grid.add_argument(
        "--repeats", type=int, help=f"timed runs per row, at least 1 (default: {DEFAULT_REPEATS})"
    )
    grid.add_argument(
        "--size",
        help="scale the model: factors N (hidden width and training rows x N) or WxB (width x W, rows x B), "
        "comma-separated, e.g. 1,4,16 or 1,1x64 (default: 1)",
    )
    grid.add_argument(
        "--under-load",
        action="store_true",
        help="run every row again beside a process spinning on one core and report the slowdown",
    )
    grid.add_argument("--order-seed", type=int, help="seed of the random row order (default: --seed)")
    grid.add_argument(
        "--quick",
        action="store_true",
        help=f"a first look in under a minute: {QUICK['epochs']} epochs, {QUICK['repeats']} repeats, without the "
        "lesson at torch's default threads (options you give still win)",
    )
    out = speed.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the results as JSON instead of the report")
    out.add_argument("--plot", metavar="FILE.png", help="write a bar chart of µs per epoch")
    out.add_argument("--markdown", metavar="FILE", help="write the report as Markdown")
    add_tensorboard_option(
        out, "write the cells as TensorBoard scalars into DIR/bench-speed-<time>", "runs/tensorboard",
        const="runs/tensorboard",
    )  # fmt: skip
    speed.set_defaults(run=run)


def parse_sizes(text: str | None):
    from devicelab.bench.speed_rows import Size

    if text is None:
        return (Size(),)
    sizes = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        numbers = part.split("x")
        if len(numbers) not in (1, 2) or not all(n.isdigit() and int(n) > 0 for n in numbers):
            raise UserError(
                f"--size: {part!r} is not a size factor",
                hint="use positive whole numbers N (width and rows x N) or WxB, e.g. --size 1,4,16 or 1,2x8",
            )
        width, batch = (int(numbers[0]),) * 2 if len(numbers) == 1 else map(int, numbers)
        sizes.append(Size(width, batch))
    if not sizes:
        raise UserError("--size: no size given", hint="e.g. --size 1,4,16")
    return tuple(dict.fromkeys(sizes))


def parse_rows(text: str | None, quick: bool = False) -> tuple[str, ...]:
    if text is None:
        return QUICK_ROWS if quick else ROW_NAMES
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    unknown = [n for n in names if n not in ROW_NAMES]
    if unknown or not names:
        raise UserError(
            f"--rows: unknown {', '.join(unknown) or 'empty list'}", hint=f"choose from {','.join(ROW_NAMES)}"
        )
    return names


def _spec(args: argparse.Namespace):
    from devicelab.bench.speed import Spec
    from devicelab.devices import devices_to_compare

    epochs = args.epochs if args.epochs is not None else (QUICK["epochs"] if args.quick else DEFAULT_EPOCHS)
    repeats = (
        args.repeats if args.repeats is not None else (QUICK["repeats"] if args.quick else DEFAULT_REPEATS)
    )
    if epochs <= 0:
        raise UserError(f"--epochs must be positive, got {epochs}")
    if repeats < 1:
        raise UserError(f"--repeats must be at least 1, got {repeats}")
    if args.batch_size is not None:
        raise UserError(
            "bench speed times full-batch training; --batch-size is not supported here",
            hint="drop it, or scale the rows with --size 1x4",
        )
    if getattr(args, "early_stop", None):
        raise UserError(
            "bench speed trains every epoch of every row; --early-stop is not supported here", hint="drop it"
        )
    if args.threads is not None and args.threads <= 0:
        raise UserError(f"--threads must be positive, got {args.threads}")
    return Spec(
        epochs=epochs,
        repeats=repeats,
        devices=devices_to_compare(args.devices),  # auto: every device here (the library's policy)
        sizes=parse_sizes(args.size),
        rows=parse_rows(args.rows, args.quick),
        threads=args.threads,
        under_load=args.under_load,
        order_seed=args.order_seed if args.order_seed is not None else args.seed,
    )


def _progress(done: int, total: int, what: str) -> None:
    print(f"[{done:>{len(str(total))}}/{total}] {what}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import json

    from devicelab.bench.speed import measure_speed
    from devicelab.data import load_dataset
    from devicelab.fsutil import atomic_write_text
    from devicelab.report.bench_speed import format_report, to_json, to_markdown, write_plot
    from devicelab.training.interrupt import StopFlag

    spec = _spec(args)
    config = config_from_args(args, epochs=spec.epochs)  # (each row trains on its own device)
    dataset = load_dataset(config)  # bad data fails here, before the run is announced
    check_output_file("plot", args.plot)
    check_output_file("markdown", args.markdown)
    if args.tensorboard is not None:  # before the run: a missing package is one line, not a lost run
        from devicelab.report.tensorboard import check_logdir

        check_logdir(args.tensorboard)
    print(
        f"bench speed: {len(spec.rows)} rows x {len(spec.sizes)} size(s) on {', '.join(spec.devices)}, "
        f"{spec.repeats} repeats of {spec.epochs} epochs after a warm-up"
        + (", then again under load" if spec.under_load else ""),
        file=sys.stderr,
    )
    stop = StopFlag("devicelab: stopping after the run in progress (Ctrl-C again to quit at once)")
    result = measure_speed(config, spec, dataset=dataset, progress=_progress, stop=stop)
    if not any(c.ok for c in result.cells):
        why = "interrupted before any timed run" if result.interrupted else "no row could run"
        print(f"devicelab: {why}; nothing to report", file=sys.stderr)
        return 130 if result.interrupted else 1
    if args.plot:
        print(f"plot: {write_plot(result, args.plot)}", file=sys.stderr)
    if args.markdown:
        plot = None
        if args.plot:
            import os

            plot = Path(
                os.path.relpath(Path(args.plot).resolve(), Path(args.markdown).resolve().parent)
            ).as_posix()
        atomic_write_text(args.markdown, to_markdown(result, plot))
        print(f"markdown: {args.markdown}", file=sys.stderr)
    if args.tensorboard is not None:
        import time

        from devicelab.report.tensorboard import run_logdir, write_bench_speed

        logdir = run_logdir(args.tensorboard, f"bench-speed-{time.strftime('%Y%m%d-%H%M%S')}")
        print(f"tensorboard: {write_bench_speed(to_json(result), logdir)}", file=sys.stderr)
    if args.json:
        print(json.dumps(to_json(result), indent=2, default=str))
    else:
        print(format_report(result))
    if result.interrupted:
        print(
            f"devicelab: interrupted after {result.runs_done} of {result.runs_planned} runs; the results above "
            "hold the rows with a timed run",
            file=sys.stderr,
        )
        return 130
    return 0
