"""devicelab train: the lesson's training program as a tool (with no options: the seed workload)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from devicelab.commands._options import add_tensorboard_option
from devicelab.commands._user_model import add_model_options, check_same_model, user_model, with_model
from devicelab.commands._workload import add_workload_arguments, config_from_args, options_fixed_by_run
from devicelab.errors import UserError
from devicelab.i18n.labels import device_label

DESCRIPTION = """\
Train an MLP on a built-in toy set or your CSV, on the device that is fastest for it. With no options
this is the lesson's seed workload: Iris, 80/20 split (seed 42), MinMax scaling, MLP 4-10-3, SGD lr 0.01,
full batch, 20000 epochs. The loss of every epoch stays on the device and is read only at log points.
With --model FILE.py:Class it trains your own torch.nn.Module the same way.
Where it applies (an MLP, found by tracing the model, on a CPU or a CUDA GPU), a fast path runs the same arithmetic with
less overhead: a fused CPU kernel, or the whole step captured in a CUDA graph (see --fast).
Writes a run folder (config, hardware, metrics.csv, losses.npy, summary.json, loss.png, model.safetensors).
Ctrl-C (or SIGTERM) stops at an epoch boundary and saves a resumable run.
Under torchrun (torchrun --nproc-per-node N -m devicelab train ..., or --nproc N here) each process trains
its share of every batch with DistributedDataParallel (NCCL on GPUs, Gloo on CPUs), with the loss history of
one process; rank 0 prints and writes the run folder. Training rows larger than the GPU's free memory are
streamed from pinned host memory (mini-batches only)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (default: the lesson's Iris MLP) and save a run folder",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_workload_arguments(parser, resumable=True)
    add_model_options(parser)
    running = parser.add_argument_group("running")
    running.add_argument(
        "--device",
        default="auto",
        help="auto (time this workload on each device, take the faster), cpu, cuda, cuda:N, mps "
        "(default: %(default)s)",
    )
    running.add_argument(
        "--fast",
        choices=("auto", "on", "off"),
        help="the fast path (a fused CPU kernel, a captured CUDA graph): auto takes it where it applies "
        "and pays, on wherever it applies, off never; a model it cannot take trains eagerly and the "
        "summary says why (default: auto)",
    )
    running.add_argument(
        "--log-every", type=int, metavar="N", help="epochs between log points (default: 100)"
    )
    running.add_argument("--runs-dir", metavar="DIR", help="where run folders go (default: runs)")
    running.add_argument("--name", help="run folder name (default: a timestamp; never overwritten)")
    running.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the run in folder RUN (see --epochs); a killed run continues from its last checkpoint",
    )
    running.add_argument(
        "--checkpoint-every",
        type=_seconds,
        metavar="SECONDS",
        help="write a resumable checkpoint (last.ckpt) at a log point at most this often, so a killed run "
        "loses little; 0: at every log point, which costs more as the run grows (each checkpoint holds the "
        "whole loss history; the summary says what they cost) (default: 60)",
    )
    running.add_argument("--quiet", action="store_true", help="no progress bar")
    running.add_argument(
        "--nproc",
        type=_positive,
        metavar="N",
        help="train with N processes on this machine (torchrun + DistributedDataParallel: NCCL on GPUs, "
        "one each, Gloo on the CPU); the same as: "
        "torchrun --standalone --nproc-per-node N -m devicelab train ...",
    )
    add_tensorboard_option(
        running,
        "also write TensorBoard event files (log points, config, hardware) into DIR/<run name>",
        "<runs-dir>/tensorboard",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.nproc is not None:
        return _launch(args.nproc)
    if _is_main():
        return _train(args)
    try:  # another rank of a torchrun job: it trains and says nothing (rank 0 prints and writes)
        return _train(args, main=False)
    except UserError:
        return 2  # every rank checks the same things: rank 0 says what is wrong


def _is_main() -> bool:
    """Rank 0 of a torchrun job, or a process not under torchrun (without importing torch when not)."""
    if "RANK" not in os.environ:
        return True
    from devicelab.training.distributed import is_main

    return is_main()


def _launch(nproc: int) -> int:
    """``devicelab train --nproc N ...``: the same command under torchrun, N processes on this machine."""
    import sys

    from devicelab.training.distributed import launch, launched

    if launched():
        raise UserError(
            "--nproc is for starting processes, and this one already runs under torchrun",
            hint="leave --nproc out under torchrun (its --nproc-per-node says how many)",
        )
    argv = sys.argv[1:]
    if "train" not in argv:
        raise UserError("--nproc works from the command line: devicelab train --nproc N ...")
    argv = [a for i, a in enumerate(argv) if a != "--nproc" and not a.startswith("--nproc=")
            and not (i and argv[i - 1] == "--nproc")]  # fmt: skip
    return launch(nproc, argv)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"takes a positive number of processes, not {text!r}")
    return value


def _train(args: argparse.Namespace, main: bool = True) -> int:
    config, checkpoint = _config(args)
    from devicelab.data import load_dataset

    dataset = load_dataset(config)  # bad data fails here, before torch is imported
    if main and dataset.source.get("kind") != "builtin":  # say what was done to the user's columns, up front
        from devicelab.data import describe_rows, role_table

        print(f"{describe_rows(dataset)}\n{role_table(dataset.roles)}\n", flush=True)
    check_runs_dir(config.runs_dir)  # before training, so a run is not trained only to be lost
    user = user_model(
        config, dataset, checkpoint.run_dir if checkpoint else None
    )  # --model: the user's module
    from devicelab.report.progress import ProgressBar
    from devicelab.training.callbacks import CallbackList, Callbacks
    from devicelab.training.interrupt import stop_on_sigint
    from devicelab.training.loop import train

    bar = None if args.quiet or not main else ProgressBar()
    # the folder exists from the start, so that a killed run leaves its last checkpoint there (rank 0 writes)
    folder = _new_folder(config) if main else None
    try:
        board = _tensorboard(args, config, folder.name) if main else None  # named after the run folder
    except UserError:
        folder.rmdir()  # nothing is in it yet
        raise
    callbacks = CallbackList(bar, board) if board else bar or Callbacks()
    # One scope for training and saving: a Ctrl-C (or SIGTERM) stops training at an epoch boundary, and
    # one that comes while the folder is written waits until it is complete.
    from devicelab.training.autosave import DEFAULT_EVERY_S, Autosave

    every = DEFAULT_EVERY_S if args.checkpoint_every is None else args.checkpoint_every
    with stop_on_sigint() as stop:
        from devicelab.training.elastic import remember

        # under torchrun, what a restart continues: this folder, once it holds a checkpoint (not before, so
        # an attempt that dies early leaves the note on the last folder that has one)
        noted = lambda folder: remember(config.runs_dir, folder)  # noqa: E731
        autosave = Autosave(folder, every_s=every, on_first_save=noted) if main else None
        result = train(
            config,
            dataset=dataset,
            resume=checkpoint,
            callbacks=callbacks,
            stop=stop,
            autosave=autosave,
            model=user,
        )
        if not main:
            return 0
        if bar and result.status != "completed":
            bar.close()
        folder = _save(result, autosave.folder)
        if board:
            board.close(folder, result.status)
            _tell_tensorboard(board.logdir)
    print(_summary(result, folder))
    warning = result.overfitting()
    if warning:
        import sys

        from devicelab.i18n import _, translate

        print(_("devicelab: warning: {warning}").format(warning=translate(warning)), file=sys.stderr)
    if result.status == "diverged":
        good = result.epochs_done
        raise UserError(
            f"the loss became NaN or infinite at epoch {result.diverged_epoch} with --lr {config.lr}; "
            f"stopped and saved the last good weights (epoch {good}) in {folder}",
            hint=f"train again with a lower learning rate, e.g. --lr {config.lr / 10:g}",
        )
    if result.status == "interrupted":
        import sys

        from devicelab.i18n import _

        print(
            _(
                "devicelab: interrupted after epoch {done} of {total}; everything so far is in {folder} "
                "(continue with: devicelab train --resume {folder})"
            ).format(done=result.epochs_done, total=config.epochs, folder=folder),
            file=sys.stderr,
        )
        return 130
    return 0


def _tensorboard(args: argparse.Namespace, config, name: str):
    """The TensorBoard writer for --tensorboard [DIR], or None; a UserError when tensorboard is missing."""
    if args.tensorboard is None:
        return None
    from devicelab.report.tensorboard import DEFAULT_DIR, TensorBoardCallbacks, run_logdir

    root = args.tensorboard or str(Path(config.runs_dir) / DEFAULT_DIR)
    return TensorBoardCallbacks(run_logdir(root, name), config.to_dict())


def _tell_tensorboard(logdir: Path) -> None:
    import sys

    from devicelab.i18n import _

    print(
        _("tensorboard: {logdir} (to look: tensorboard --logdir {root})").format(
            logdir=logdir, root=logdir.parent
        ),
        file=sys.stderr,
    )


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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"takes seconds (0 or more), not {text!r}")
    return value


def _new_folder(config) -> Path:
    from devicelab.fsutil import new_run_dir

    try:
        return new_run_dir(config.runs_dir, config.name)
    except OSError as error:
        raise UserError(
            f"could not make a run folder under {config.runs_dir}: {error.strerror or error}",
            hint="pass --runs-dir DIR with a folder you can write to",
        ) from None


def _save(result, folder: Path) -> Path:
    from devicelab.training.run_folder import write_run

    try:
        return write_run(result, result.config.runs_dir, result.config.name, folder=folder)
    except OSError as error:  # a full disk, a folder removed meanwhile: say so, without a traceback
        raise UserError(
            f"could not write the run folder under {result.config.runs_dir}: "
            f"{error.strerror or error} ({error.filename})",
            hint="free some space or pass --runs-dir DIR with a writable folder, then train again",
        ) from None


def _config(args: argparse.Namespace):
    """The run's config: from the options, or from the resumed run folder (plus --epochs and the
    running options)."""
    running = {"log_every": args.log_every, "name": args.name, "quiet": args.quiet, "fast": args.fast}
    from devicelab.training.elastic import folder_to_continue

    # a torchrun job restarted after a failure (--max-restarts) continues its last checkpoint
    resume = args.resume or folder_to_continue(args.runs_dir or "runs")
    if not resume:
        defaults = {"log_every": 100, "runs_dir": args.runs_dir or "runs"}
        config = config_from_args(args, **{**defaults, **{k: v for k, v in running.items() if v is not None}})
        return with_model(config, args), None
    from devicelab.training.resume import load_checkpoint

    checkpoint = load_checkpoint(resume)
    _check_same_data(args, checkpoint)
    check_same_model(args, checkpoint)  # and a devicelab.fit run (its arrays are not kept) is refused
    _check_nothing_fixed_is_changed(args, checkpoint)
    folder = Path(resume)
    config = checkpoint.config_for(
        args.epochs,
        data=args.data,  # a CSV that moved: its contents are checked against the run's (sha256)
        device=args.device if args.device != "auto" else None,
        fast=args.fast,
        threads=args.threads,
        log_every=args.log_every,
        quiet=args.quiet,
        runs_dir=args.runs_dir or str(folder.resolve().parent),
        name=args.name or f"{folder.resolve().name}-resumed",
    )
    return config, checkpoint


def _check_nothing_fixed_is_changed(args: argparse.Namespace, checkpoint) -> None:
    """--lr, --hidden, --optimizer, ... with --resume would be silently ignored: refuse a value other than
    the run's own (the run's own value, as a restarted torchrun job repeats it, is fine)."""
    saved = checkpoint.config.to_dict()
    changed = [
        (d, o) for d, o in options_fixed_by_run(args) if _listed(getattr(args, d)) != _listed(saved.get(d))
    ]
    given = [option for _, option in changed]
    if given:
        kept = ", ".join(f"{o} {_show(saved.get(d))}" for d, o in changed)
        raise UserError(
            f"{', '.join(given)} cannot change when resuming run {checkpoint.run_dir} (it keeps {kept})",
            hint="leave them out to continue the run as it was, or start a new run with the new values",
        )


def _listed(value):
    return list(value) if isinstance(value, tuple | list) else value


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


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


def _early_line(early: dict, status: str = "completed") -> str:
    if early["best_epoch"] is not None and status not in ("completed", "early_stopped"):
        return (  # stopped by the user or a NaN: the model holds the last (good) epoch's weights, not the best
            f"best validation loss so far {early['best_val_loss']:.4f} (epoch {early['best_epoch']}); the weights "
            f"are the last epoch's, so the run can go on; patience {early['patience_log_points']} log points"
        )
    if early["best_epoch"] is None:
        return f"patience {early['patience_log_points']} log points; no validation point recorded"
    stopped = f"stopped at epoch {early['stopped_epoch']}, " if early["stopped_epoch"] else ""
    return (
        f"{stopped}kept the best validation loss {early['best_val_loss']:.4f} (epoch {early['best_epoch']}); "
        f"patience {early['patience_log_points']} log points"
    )


def _step_line(result) -> str:
    return result.path_reason or result.path


def _summary(result, folder: Path) -> str:
    from devicelab.i18n import _, translate
    from devicelab.i18n.labels import metric_label, status_text
    from devicelab.report.tables import format_key_values

    final = result.final
    pairs = [
        (_("run folder"), folder),
        (
            _("status"),
            _("{status} ({done} of {total} epochs)").format(
                status=status_text(result.status), done=result.epochs_done, total=result.config.epochs
            ),
        ),
        (_("device"), device_label(result.choice.device, result.choice.threads)),
        (_("step"), translate(_step_line(result))),
        (
            _("wall time"),
            _("{seconds:.2f} s for {epochs} epochs ({us:.1f} µs/epoch)").format(
                seconds=result.wall_s, epochs=result.session_epochs, us=result.us_per_epoch
            )
            + (
                _(", after {seconds:.2f} s of compile/capture").format(seconds=result.setup_s)
                if result.setup_s >= 0.005
                else ""
            ),
        ),
        (_("host syncs"), _("{n} (one per log point)").format(n=result.host_syncs)),
    ]
    if result.early_stopping:
        pairs.append((_("early stopping"), translate(_early_line(result.early_stopping, result.status))))
    if result.world_size > 1:
        pairs.append(("processes", f"{result.world_size} (torchrun + DistributedDataParallel)"))
    if result.data_mode != "device":
        pairs.append(("data", result.data_reason))
    if result.checkpoints and result.checkpoints["written"]:
        c = result.checkpoints
        pairs.append(
            (
                _("checkpoints"),
                _("{written} written in {seconds:.3f} s (every {every:g} s)").format(
                    written=c["written"], seconds=c["seconds"], every=c["every_s"]
                ),
            )
        )
    pairs += [
        (metric_label(key), f"{value:.4f}")
        for key, value in final.items()
        if key not in ("epoch", "elapsed_s")
    ]
    return format_key_values(pairs, indent="")
