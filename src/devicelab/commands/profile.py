"""devicelab profile: per-layer time through module hooks, a step breakdown, a sync audit and a verdict on
whether the step is overhead-bound or compute/memory-bound."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devicelab.commands._workload import add_workload_arguments, adjust_option, config_from_args
from devicelab.errors import UserError

DESCRIPTION = """\
devicelab profile SCRIPT.py [ARGS...] / devicelab profile -m MODULE [ARGS...]:
run your own training script unchanged, in this process, and see where its steps' time goes: phases
per step, each layer's forward and backward, every host-device sync at your line with its cost, the
regime and ranked advice. devicelab's options come before the script; everything after it is the
script's own (devicelab profile --steps 20 train.py --steps 2).

devicelab profile (no script): the same for devicelab's own training of a workload (default: the
lesson's Iris MLP), from the outside, through nn.Module hooks, without changing the model:
  - layers: output shape, parameters, multiply-accumulates, forward and backward time, activation stats;
  - step breakdown: forward, loss, backward, optimizer, other; operators per step; GPU busy time;
  - sync audit: every host-device sync of the lesson's loop and of devicelab's loop, by source line;
  - regime: the step timed at batch ×1, ×4, ×16, ×64 and hidden width ×4, and the verdict
    overhead-bound or compute/memory-bound, with what helps.
The data, model and optimiser options are those of 'devicelab train' (--epochs is not used: --steps is)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="per-layer time (module hooks), step phases, sync audit, overhead-vs-compute verdict",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_workload_arguments(parser)
    adjust_option(parser, "epochs", help="not used here: --steps sets how many steps are timed")
    adjust_option(
        parser, "threads", help="CPU threads for torch (default: those devicelab train would choose)"
    )
    run_group = parser.add_argument_group("profiling")
    run_group.add_argument(
        "--device",
        default="auto",
        help="auto (the device devicelab train would choose, by timing this workload), cpu, cuda, cuda:N, mps",
    )
    run_group.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps per window (script: baseline, phases, layers; default 100) or per measurement (default 20)",
    )
    run_group.add_argument(
        "--warmup", type=int, default=None, help="steps run before the first window (script; default: 10)"
    )
    run_group.add_argument(
        "--stop-after",
        action="store_true",
        help="end the script once its windows are measured (default: it runs to its end at full speed)",
    )
    run_group.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write the report as JSON to FILE; --json alone (or -): print it instead of the tables, on stdout "
        "alone (a script's own output then goes to stderr)",
    )
    run_group.add_argument(
        "-m", dest="module", nargs=argparse.REMAINDER, metavar="MODULE", help="profile a module, as python -m"
    )
    parser.add_argument(
        "script", nargs=argparse.REMAINDER, metavar="SCRIPT.py [ARGS...]", help="the script to profile"
    )
    run_group.add_argument(
        "--plot",
        metavar="FILE.png|DIR",
        help="write a bar chart of time per layer and per phase (in a folder: profile.png and profile.json)",
    )
    run_group.add_argument("--no-regime", action="store_true", help="skip the size probe (faster)")
    parser.set_defaults(run=run)


def script_after_json(argv: list[str]) -> list[str]:
    """``profile --json train.py ...``: ``--json`` takes an optional FILE, and argparse would take the
    script for it (and write the report over the script); a ``.py`` right after ``--json`` is the script,
    the report goes to stdout (as ``--json - train.py``)."""
    if "profile" not in argv:
        return argv
    out = list(argv)
    for i in range(out.index("profile") + 1, len(out) - 1):
        if out[i].lower().endswith((".py", ".pyw")) or out[i] == "-m":
            break  # the program starts here: the rest is its own
        if out[i] == "--json" and out[i + 1].lower().endswith((".py", ".pyw")):
            out.insert(i + 1, "-")
            break
    return out


def _plot_paths(spec: str) -> tuple[Path, Path | None]:
    """``(png, json or None)`` for ``--plot``; checked before any work so a bad path fails at once."""
    target = Path(spec)
    is_file = target.suffix.lower() == ".png"
    png, report = (target, None) if is_file else (target / "profile.png", target / "profile.json")
    png, report = png.absolute(), report and report.absolute()  # a script may change folder
    for parent in (png.parent, *png.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise UserError(
                    f"--plot {spec}: {parent} is a file, not a folder", hint="choose another path"
                )
            _check_writable(spec, parent)
            break
    if png.is_dir():
        raise UserError(f"--plot {spec}: {png} is a folder", hint="give a FILE.png or a folder")
    return png, report


def _check_writable(spec: str, folder: Path) -> None:
    """Create and delete a scratch file in ``folder``, so an unwritable --plot fails before the profiling."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(
            f"--plot {spec}: cannot write in {folder}: {error.strerror or error}",
            hint="choose a folder you can write to",
        ) from None


def run(args: argparse.Namespace) -> int:
    for option in ("steps", "warmup"):
        value = getattr(args, option)
        if value is not None and value < (1 if option == "steps" else 0):
            at_least = 1 if option == "steps" else 0
            raise UserError(f"--{option} must be at least {at_least}, got {value}")
    if args.script[:1] == ["--"]:  # profile [OPTIONS] -- train.py ARGS: "--" ends devicelab's options
        args.script = args.script[1:]
        if not args.script:
            raise UserError(
                "-- is not followed by a script", hint="devicelab profile [OPTIONS] -- train.py [ARGS...]"
            )
    if args.module is not None or args.script:
        from devicelab.commands.profile_script import run_program

        return run_program(args, _plot_paths(args.plot) if args.plot else None)
    args.steps = args.steps if args.steps is not None else 20
    config = config_from_args(args)
    paths = _plot_paths(args.plot) if args.plot else None

    from devicelab.data import load_dataset
    from devicelab.devices import resolve_device
    from devicelab.fsutil import atomic_write_text
    from devicelab.profile.run import profile_workload
    from devicelab.report.profile import format_report, to_json

    if config.device != "auto":
        resolve_device(config.device)  # a device that is not here fails at once, in one line
    dataset = load_dataset(config)  # bad data fails here, before any progress line
    quiet = args.json is not None

    def stage(name: str) -> None:
        if not quiet:
            print(f"devicelab profile: {name}...", file=sys.stderr, flush=True)

    # no device given: the one devicelab train would run (config.device, auto: timed) with its threads
    stage("choosing the device as devicelab train would")
    report = profile_workload(config, dataset, steps=args.steps, regime=not args.no_regime, on_stage=stage)
    if args.json not in (None, "-"):
        atomic_write_text(args.json, to_json(report) + "\n")
    print(to_json(report) if args.json == "-" else format_report(report))
    if paths is not None:
        from devicelab.commands.profile_script import _write_plot  # the script profile's --plot, as it is

        _write_plot(report, paths, args.plot)
    return 0
