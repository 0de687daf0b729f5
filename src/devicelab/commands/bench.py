"""devicelab bench: benchmarks that answer questions with measurements (``bench logging``; ``bench speed`` is
in ``bench_speed.py``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from devicelab.commands import bench_speed
from devicelab.commands._options import add_tensorboard_option, check_output_file
from devicelab.commands._workload import add_workload_arguments, adjust_option, config_from_args
from devicelab.errors import UserError

STRATEGY_NAMES = ("item", "tensor", "detach", "buffer")
DEFAULT_EPOCHS = 20000
DEFAULT_INTERVALS = "1,10,100,1000,2000,never"
DEFAULT_REPEATS = 5
QUICK = {"epochs": 1000, "intervals": "1,10,100,never", "repeats": 3}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmarks that answer training questions with measurements",
        description="Benchmarks that answer training questions with measurements on this machine.",
    )
    parser.set_defaults(run=lambda args: _print_help(parser))
    benches = parser.add_subparsers(dest="bench", metavar="BENCHMARK")
    logging = benches.add_parser(
        "logging",
        help="does recording the loss more often cost time or memory? (the lesson's homework)",
        description=(
            "The lesson's homework, measured: record interval x recording strategy (item, tensor, detach, "
            "buffer) x device, each cell repeated after a warm-up with cells interleaved; then a verdict "
            "(supported, refuted or within noise) on each of the lesson's three explanations."
        ),
    )
    add_workload_arguments(logging, epochs_default=DEFAULT_EPOCHS)
    adjust_option(  # default None = not given, so that --quick knows what it may change
        logging,
        "epochs",
        default=None,
        help=f"epochs per run (default: {DEFAULT_EPOCHS}; {QUICK['epochs']} with --quick)",
    )
    adjust_option(
        logging,
        "threads",
        help="CPU threads for torch (default here: 1, fastest for the seed workload's tiny ops)",
    )
    adjust_option(logging, "batch_size", help="not supported here: bench logging times full-batch steps")
    grid = logging.add_argument_group("experiment")
    grid.add_argument(
        "--intervals",
        help=f"record every k epochs, comma-separated; 'never' = no records (default: {DEFAULT_INTERVALS})",
    )
    grid.add_argument(
        "--strategies", help=f"comma-separated subset of {','.join(STRATEGY_NAMES)} (default: all)"
    )
    grid.add_argument(
        "--device",
        dest="devices",
        action="append",
        help="cpu, cuda, cuda:N, ... (repeat or comma-separate; default: auto = the CPU and every available GPU)",
    )
    grid.add_argument(
        "--repeats", type=int, help=f"timed runs per cell, at least 2 (default: {DEFAULT_REPEATS})"
    )
    grid.add_argument("--order-seed", type=int, help="seed of the random cell order (default: --seed)")
    grid.add_argument(
        "--quick",
        action="store_true",
        help=(
            f"a first look in seconds: {QUICK['epochs']} epochs, intervals {QUICK['intervals']}, "
            f"{QUICK['repeats']} repeats (options you give still win)"
        ),
    )
    out = logging.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the results as JSON instead of the report")
    out.add_argument("--csv", metavar="FILE", help="write one row per cell")
    out.add_argument("--markdown", metavar="FILE", help="write a report a student could hand in")
    out.add_argument("--plots", metavar="DIR", help="write time_per_epoch.png and memory.png there")
    add_tensorboard_option(
        out, "write the cells as TensorBoard scalars into DIR/bench-logging-<time>", "runs/tensorboard",
        const="runs/tensorboard",
    )  # fmt: skip
    logging.set_defaults(run=run)
    bench_speed.register(benches)  # `bench speed`: its parser and run function live in bench_speed.py


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def parse_intervals(text: str) -> tuple[int | None, ...]:
    values: list[int | None] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if part == "never":
            values.append(None)
        elif part.isdigit() and int(part) > 0:
            values.append(int(part))
        else:
            raise UserError(
                f"--intervals: {part!r} is not a record interval",
                hint="use positive whole numbers of epochs or 'never', e.g. --intervals 1,100,2000,never",
            )
    if len(set(values)) < 2:
        raise UserError("--intervals needs at least two different intervals to compare", hint="e.g. 1,never")
    return tuple(dict.fromkeys(values))


def parse_strategies(text: str | None) -> tuple[str, ...]:
    if text is None:
        return STRATEGY_NAMES
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    unknown = [n for n in names if n not in STRATEGY_NAMES]
    if unknown or not names:
        raise UserError(
            f"--strategies: unknown {', '.join(unknown) or 'empty list'}",
            hint=f"choose from {','.join(STRATEGY_NAMES)}",
        )
    return names


def _check_outputs(args: argparse.Namespace) -> None:
    """Fail before a long run, not after it, when an output cannot be written."""
    for option in ("csv", "markdown"):
        check_output_file(option, getattr(args, option))
    if args.plots:
        if Path(args.plots).exists() and not Path(args.plots).is_dir():
            raise UserError(f"--plots {args.plots}: is a file", hint="give a folder")
        try:
            Path(args.plots).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"--plots {args.plots}: cannot create it ({error.strerror})") from None


def _grid(args: argparse.Namespace):
    from devicelab.bench.logging_experiment import Grid
    from devicelab.devices import devices_to_compare

    quick = args.quick
    epochs = args.epochs if args.epochs is not None else (QUICK["epochs"] if quick else DEFAULT_EPOCHS)
    if epochs <= 0:
        raise UserError(f"--epochs must be positive, got {epochs}")
    default_intervals = QUICK["intervals"] if quick else DEFAULT_INTERVALS
    intervals = parse_intervals(args.intervals if args.intervals is not None else default_intervals)
    repeats = args.repeats if args.repeats is not None else (QUICK["repeats"] if quick else DEFAULT_REPEATS)
    if repeats < 2:
        raise UserError(
            f"--repeats must be at least 2, got {repeats}",
            hint="the verdicts weigh each difference against the run-to-run spread, which needs two runs",
        )
    too_long = [k for k in intervals if k is not None and k > epochs]
    if too_long:
        raise UserError(
            f"--intervals: {','.join(map(str, too_long))} {'is' if len(too_long) == 1 else 'are'} longer than the {epochs} epochs of a run, "
            "so nothing would be recorded",
            hint="use smaller intervals, 'never', or more --epochs",
        )
    if args.batch_size is not None:
        raise UserError(
            "bench logging times full-batch steps; --batch-size is not supported here", hint="drop it"
        )
    return Grid(
        epochs=epochs,
        intervals=intervals,
        strategies=parse_strategies(args.strategies),
        devices=devices_to_compare(args.devices),  # auto: every device here (the library's policy)
        repeats=repeats,
        order_seed=args.order_seed if args.order_seed is not None else args.seed,
        threads=args.threads or 1,  # tiny ops: one intra-op thread is fastest (see docs/bench-logging.md)
    )


def _progress(done: int, total: int, what: str) -> None:
    print(f"[{done:>{len(str(total))}}/{total}] {what}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import json

    from devicelab.bench.logging_experiment import run_experiment
    from devicelab.bench.verdict import judge
    from devicelab.data import load_dataset
    from devicelab.fsutil import atomic_write_text
    from devicelab.report.bench_logging import format_report, to_csv, to_json, to_markdown
    from devicelab.training.interrupt import StopFlag

    grid = _grid(args)
    config = config_from_args(args, epochs=grid.epochs)
    dataset = load_dataset(config)  # bad data fails here, before any folder is made or the run announced
    _check_outputs(args)
    if args.tensorboard is not None:  # before the run: a missing package is one line, not a lost hour
        from devicelab.report.tensorboard import check_logdir

        check_logdir(args.tensorboard)
    print(
        f"bench logging: {len(grid.cells())} cells x ({grid.repeats} repeats + 1 warm-up) of {grid.epochs} "
        f"epochs on {', '.join(grid.devices)}, {grid.threads} CPU thread(s)",
        file=sys.stderr,
    )
    stop = StopFlag("devicelab: stopping after the run in progress (Ctrl-C again to quit at once)")
    experiment = run_experiment(config, grid, progress=_progress, dataset=dataset, stop=stop)
    if not experiment.cells:
        print("devicelab: interrupted before any timed run; nothing to report", file=sys.stderr)
        return 130
    verdicts = judge(experiment.cells, {c.device: c.per_sync_s for c in experiment.sync_costs})

    plots: list[str] = []
    if args.plots:
        from devicelab.report.bench_plots import write_plots

        written = write_plots(experiment, args.plots)
        base = Path(args.markdown).resolve().parent if args.markdown else Path.cwd()
        plots = [_relative(p, base) for p in written]
        print(f"plots: {', '.join(str(p) for p in written)}", file=sys.stderr)
    if args.csv:
        atomic_write_text(args.csv, to_csv(experiment))
        print(f"csv: {args.csv}", file=sys.stderr)
    if args.tensorboard is not None:
        from devicelab.report.tensorboard import run_logdir, write_bench_logging

        board = write_bench_logging(
            to_json(experiment, verdicts),
            run_logdir(args.tensorboard, f"bench-logging-{time.strftime('%Y%m%d-%H%M%S')}"),
        )
        print(f"tensorboard: {board}", file=sys.stderr)
    if args.markdown:
        atomic_write_text(args.markdown, to_markdown(experiment, verdicts, plots))
        print(f"markdown: {args.markdown}", file=sys.stderr)
    if args.json:
        print(json.dumps(to_json(experiment, verdicts), indent=2, default=str))
    else:
        print(format_report(experiment, verdicts))
    if experiment.interrupted:
        print(
            f"devicelab: interrupted after {experiment.runs_done} of {experiment.runs_planned} runs; "
            f"the results above hold the {len(experiment.cells)} cells with a timed run",
            file=sys.stderr,
        )
        return 130
    return 0


def _relative(path: Path, base: Path) -> str:
    import os

    return Path(os.path.relpath(path.resolve(), base)).as_posix()
