"""devicelab train: the lesson's training program as a tool (with no options: the seed workload)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from devicelab.commands._options import add_tensorboard_option
from devicelab.commands._user_model import add_model_options, check_same_model, user_model, with_model
from devicelab.commands._workload import add_workload_arguments, config_from_args, options_fixed_by_run
from devicelab.errors import UserError

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
        from devicelab.data import file_report
        from devicelab.report.run_lines import print_cross_validation_note

        print(file_report(dataset), flush=True)
        from sys import stderr

        from devicelab.i18n import _

        for line in dataset.warnings:  # rare classes, extreme target values: said once, before training
            print(_("devicelab: warning: {warning}").format(warning=line), file=stderr, flush=True)
        print_cross_validation_note(config, dataset, resumed=checkpoint is not None)
    _check_device(config, checkpoint)  # before the run folder is made, so a bad --device leaves nothing
    from devicelab.training.autosave import DEFAULT_EVERY_S
    from devicelab.training.loop import train
    from devicelab.training.session import Keep

    keep = Keep(
        checkpoint_every=DEFAULT_EVERY_S if args.checkpoint_every is None else args.checkpoint_every,
        tensorboard=args.tensorboard,
        progress=main and not args.quiet,
        writes=main,
    )
    user = user_model(
        config, dataset, checkpoint.run_dir if checkpoint else None
    )  # --model: the user's module
    result = train(config, dataset=dataset, resume=checkpoint, keep=keep, model=user)
    if not main:
        return 0
    if result.tensorboard:
        _tell_tensorboard(Path(result.tensorboard))
    return _report(result)


def _report(result) -> int:
    """The summary, a warning and the exit status of a finished run."""
    import sys

    from devicelab.i18n import _, translate
    from devicelab.report.train_summary import train_summary

    config, folder = result.config, result.folder
    print(train_summary(result, Path(folder)))
    for warning in (result.overfitting(), result.baseline_advice()):
        if warning:
            print(_("devicelab: warning: {warning}").format(warning=translate(warning)), file=sys.stderr)
    if result.status == "diverged":
        good = result.epochs_done
        raise UserError(
            f"the loss became NaN or infinite at epoch {result.diverged_epoch} with --lr {config.lr}; "
            f"stopped and saved the last good weights (epoch {good}) in {folder}",
            hint=f"train again with a lower learning rate, e.g. --lr {config.lr / 10:g}",
        )
    if result.status == "interrupted":
        print(
            _(
                "devicelab: interrupted after epoch {done} of {total}; everything so far is in {folder} "
                "(continue with: devicelab train --resume {folder})"
            ).format(done=result.epochs_done, total=config.epochs, folder=folder),
            file=sys.stderr,
        )
        return 130
    return 0


def _check_device(config, checkpoint) -> None:
    """A UserError, in one line, when the device asked for (or a resumed run's own) is not on this machine."""
    spec = config.device if config.device != "auto" else checkpoint.summary["device"] if checkpoint else None
    if spec is not None:
        from devicelab.devices import resolve_device

        resolve_device(spec)


def _tell_tensorboard(logdir: Path) -> None:
    import sys

    from devicelab.i18n import _

    print(
        _("tensorboard: {logdir} (to look: tensorboard --logdir {root})").format(
            logdir=logdir, root=logdir.parent
        ),
        file=sys.stderr,
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"takes seconds (0 or more), not {text!r}")
    return value


def _config(args: argparse.Namespace):
    """The run's config (and the checkpoint it continues, or None): from the options, or, resuming, the
    library's decision on a request made of them."""
    running = {"log_every": args.log_every, "name": args.name, "quiet": args.quiet, "fast": args.fast}
    from devicelab.training.elastic import folder_to_continue

    # a torchrun job restarted after a failure (--max-restarts) continues its last checkpoint
    resume = args.resume or folder_to_continue(args.runs_dir or "runs")
    if not resume:
        defaults = {"log_every": 100, "runs_dir": args.runs_dir or "runs"}
        config = config_from_args(args, **{**defaults, **{k: v for k, v in running.items() if v is not None}})
        return with_model(config, args), None
    from devicelab.training.resume_request import ResumeRequest, resume_run

    config, checkpoint = resume_run(
        ResumeRequest(
            resume,
            epochs=args.epochs,
            data=args.data,
            dataset=args.dataset,
            fixed={dest: (option, getattr(args, dest)) for dest, option in options_fixed_by_run(args)},
            running={
                **running,
                "device": args.device if args.device != "auto" else None,
                "threads": args.threads,
                "runs_dir": args.runs_dir,
            },
        )
    )
    check_same_model(args, checkpoint)  # and a devicelab.fit run (its arrays are not kept) is refused
    return config, checkpoint
