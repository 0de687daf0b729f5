"""devicelab train: the lesson's training program as a tool (with no options: the seed workload)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from devicelab.commands._workload import add_workload_arguments, config_from_args
from devicelab.errors import UserError

DESCRIPTION = """\
Train an MLP on a built-in toy set or your CSV, on the device that is fastest for it. With no options
this is the lesson's seed workload: Iris, 80/20 split (seed 42), MinMax scaling, MLP 4-10-3, SGD lr 0.01,
full batch, 20000 epochs. The loss of every epoch stays on the device and is read only at log points.
Writes a run folder (config, hardware, metrics.csv, losses.npy, summary.json, loss.png, model.safetensors).
Ctrl-C (or SIGTERM) stops at an epoch boundary and saves a resumable run."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (default: the lesson's Iris MLP) and save a run folder",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_workload_arguments(parser, resumable=True)
    running = parser.add_argument_group("running")
    running.add_argument(
        "--device",
        default="auto",
        help="auto (time this workload on each device, take the faster), cpu, cuda, cuda:N, mps "
        "(default: %(default)s)",
    )
    running.add_argument(
        "--log-every", type=int, metavar="N", help="epochs between log points (default: 100)"
    )
    running.add_argument("--runs-dir", metavar="DIR", help="where run folders go (default: runs)")
    running.add_argument("--name", help="run folder name (default: a timestamp; never overwritten)")
    running.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN (see --epochs)")
    running.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config, checkpoint = _config(args)
    from devicelab.data import load_dataset

    dataset = load_dataset(config)  # bad data fails here, before torch is imported
    check_runs_dir(config.runs_dir)  # before training, so a run is not trained only to be lost
    from devicelab.report.progress import ProgressBar
    from devicelab.training.callbacks import Callbacks
    from devicelab.training.interrupt import stop_on_sigint
    from devicelab.training.loop import train

    bar = None if args.quiet else ProgressBar()
    # One scope for training and saving: a Ctrl-C (or SIGTERM) stops training at an epoch boundary, and
    # one that comes while the folder is written waits until it is complete.
    with stop_on_sigint() as stop:
        result = train(config, dataset=dataset, resume=checkpoint, callbacks=bar or Callbacks(), stop=stop)
        if bar and result.status != "completed":
            bar.close()
        folder = _save(result)
    print(_summary(result, folder))
    if result.status == "diverged":
        good = result.epochs_done
        raise UserError(
            f"the loss became NaN or infinite at epoch {result.diverged_epoch} with --lr {config.lr}; "
            f"stopped and saved the last good weights (epoch {good}) in {folder}",
            hint=f"train again with a lower learning rate, e.g. --lr {config.lr / 10:g}",
        )
    if result.status == "interrupted":
        import sys

        print(
            f"devicelab: interrupted after epoch {result.epochs_done} of {config.epochs}; everything so far is "
            f"in {folder} (continue with: devicelab train --resume {folder})",
            file=sys.stderr,
        )
        return 130
    return 0


def check_runs_dir(runs_dir: str) -> None:
    """A UserError when run folders cannot be made under ``runs_dir`` (nothing is created here)."""
    path = Path(runs_dir).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "is not a folder" if not existing.is_dir() else "is not writable"
        raise UserError(
            f"cannot write run folders under {runs_dir}: {existing} {what}",
            hint="pass --runs-dir DIR with a folder you can write to",
        )


def _save(result) -> Path:
    try:
        return result.save()
    except OSError as error:  # a full disk, a folder removed meanwhile: say so, without a traceback
        raise UserError(
            f"could not write the run folder under {result.config.runs_dir}: "
            f"{error.strerror or error} ({error.filename})",
            hint="free some space or pass --runs-dir DIR with a writable folder, then train again",
        ) from None


def _config(args: argparse.Namespace):
    """The run's config: from the options, or from the resumed run folder (plus --epochs and the
    running options)."""
    running = {"log_every": args.log_every, "name": args.name, "quiet": args.quiet}
    if not args.resume:
        defaults = {"log_every": 100, "runs_dir": args.runs_dir or "runs"}
        return config_from_args(
            args, **{**defaults, **{k: v for k, v in running.items() if v is not None}}
        ), None
    from devicelab.training.resume import load_checkpoint

    checkpoint = load_checkpoint(args.resume)
    _check_same_data(args, checkpoint)
    folder = Path(args.resume)
    config = checkpoint.config_for(
        args.epochs,
        data=args.data,  # a CSV that moved: its contents are checked against the run's (sha256)
        device=args.device if args.device != "auto" else None,
        threads=args.threads,
        log_every=args.log_every,
        quiet=args.quiet,
        runs_dir=args.runs_dir or str(folder.resolve().parent),
        name=args.name or f"{folder.resolve().name}-resumed",
    )
    from devicelab.training.config import validate

    validate(config)
    return config, checkpoint


def _check_same_data(args: argparse.Namespace, checkpoint) -> None:
    """--dataset/--data given with --resume must name the run's kind of data (a CSV given for a CSV run
    may live at another path: its contents are compared once it is read); a CSV run's file must exist."""
    saved = checkpoint.config
    saved_path = checkpoint.preprocessing.get("source", {}).get("path")
    asked_csv = args.data is not None and saved_path is None
    asked_set = args.dataset is not None and (saved.data is not None or args.dataset != saved.dataset)
    if asked_csv or asked_set:
        trained_on = saved.data or saved.dataset
        raise UserError(
            f"run {checkpoint.run_dir} was trained on {trained_on}, not {args.data or args.dataset}",
            hint="resume with the run's own data (or leave --data/--dataset out), or start a new run",
        )
    if saved_path and args.data is None and not Path(saved_path).is_file():
        raise UserError(
            f"run {checkpoint.run_dir} was trained on {saved_path}, which is no longer there",
            hint="pass --data with the file's new path; its contents must be the same",
        )


def _summary(result, folder: Path) -> str:
    from devicelab.report.tables import format_key_values

    final = result.final
    pairs = [
        ("run folder", folder),
        ("status", f"{result.status} ({result.epochs_done} of {result.config.epochs} epochs)"),
        (
            "device",
            f"{result.choice.device} ({result.choice.threads} CPU thread{'s' * (result.choice.threads != 1)})",
        ),
        (
            "wall time",
            f"{result.wall_s:.2f} s for {result.session_epochs} epochs ({result.us_per_epoch:.1f} µs/epoch)",
        ),
        ("host syncs", f"{result.host_syncs} (one per log point)"),
    ]
    pairs += [
        (key.replace("_", " "), f"{value:.4f}")
        for key, value in final.items()
        if key not in ("epoch", "elapsed_s")
    ]
    return format_key_values(pairs, indent="")
