"""devicelab sweep: many models at once — every combination of learning rates, seeds and hidden shapes."""

from __future__ import annotations

import argparse
import json
import sys

from devicelab.commands._options import add_tensorboard_option
from devicelab.commands._user_model import add_model_options, with_model
from devicelab.commands._workload import add_workload_arguments, adjust_option, config_from_args
from devicelab.errors import UserError
from devicelab.sweep.grid import Grid, parse_lrs, parse_seeds

DESCRIPTION = """\
Train every combination of --lr, --seeds and --hidden with the train options (default: the lesson's seed
workload), the models of one hidden shape together on one device (on the CPU a numba kernel with the
models side by side in SIMD lanes; on a GPU batched matmuls), the shapes one after another. Each model is
the run `devicelab train` would make with its learning rate, initialised from its seed; the data split is
--seed (default 42), the same for all models, so they differ only in what is swept. With --batch-size,
every model also sees the batches its single run would (the shuffle is seeded by the split seed).

Writes a sweep folder: results.csv (one row per model), losses.npy (models × epochs), sweep.png, and
best/, the best model as an ordinary run folder (devicelab predict RUN/best). Ctrl-C stops within ~50 ms,
saves what was done and exits with status 130."""

EPILOG = """\
examples:
  devicelab sweep --lr 0.001,0.01,0.1 --seeds 0-63 --epochs 2000
  devicelab sweep --hidden 10 32 16,16 --lr 0.01,0.1 --seeds 0-9     (three shapes: 10, 32 and 16-16)
  devicelab sweep --optimizer adam --lr 0.001,0.003,0.01 --seeds 0-31 --batch-size 32"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="train many models at once (learning rates × seeds × hidden shapes) and rank them",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_workload_arguments(parser, epochs_default=2000)
    add_model_options(parser)
    adjust_option(parser, "lr", type=str, default="0.01",
                  help="learning rates, comma-separated, e.g. 0.001,0.01,0.1 (default: %(default)s)")  # fmt: skip
    adjust_option(parser, "hidden", nargs="+", metavar="SHAPE",
                  help="hidden shapes, space-separated; commas separate the layers of one shape: "
                       "--hidden 10 32,32 sweeps a 10-wide and a 32-32 MLP (default: 10)")  # fmt: skip
    adjust_option(
        parser, "seed", help="the data split's seed, the same for every model (default: %(default)s)"
    )
    sweep = parser.add_argument_group("sweep")
    sweep.add_argument(
        "--seeds",
        metavar="LIST",
        help="initialisation seeds: 0-63, 1,5,7 or 0-3,10 (default: --seed, i.e. the init devicelab train uses)",
    )
    sweep.add_argument(
        "--layout",
        choices=("auto", "numba", "bmm"),
        default="auto",
        help="how the models train together: numba (CPU kernel), bmm (batched matmuls, any device); "
        "auto: numba on the CPU, bmm elsewhere",
    )
    sweep.add_argument("--top", type=int, default=10, metavar="N", help="leaderboard rows (default: 10)")
    running = parser.add_argument_group("running")
    running.add_argument(
        "--device", default="auto", help="auto (a GPU if there is one, else cpu), cpu, cuda, cuda:N"
    )
    running.add_argument(
        "--log-every", type=int, default=100, metavar="N", help="epochs between log points (default: 100)"
    )
    running.add_argument(
        "--runs-dir", default="runs", metavar="DIR", help="where the sweep folder goes (default: runs)"
    )
    running.add_argument("--name", help="sweep folder name (default: a timestamp; never overwritten)")
    running.add_argument("--quiet", action="store_true", help="no progress lines")
    running.add_argument("--json", action="store_true", help="print the summary and leaderboard as JSON")
    add_tensorboard_option(
        running,
        "also write one TensorBoard run per model (hyper-parameters with the HParams plugin, final metrics, "
        "the loss curve) into DIR",
        "<sweep folder>/tensorboard",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    hiddens = _hiddens(args.hidden) if not args.model else ((),)  # --model: the user's module's own shape
    lrs = parse_lrs(args.lr)
    if args.top <= 0:
        raise UserError(f"--top must be positive, got {args.top}")
    config = config_from_args(
        args, lr=lrs[0], hidden=hiddens[0], log_every=args.log_every, runs_dir=args.runs_dir, name=args.name,
        quiet=args.quiet,
    )  # fmt: skip
    config = with_model(config, args)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else (config.seed,)
    grid = Grid(lrs=lrs, seeds=seeds, hiddens=hiddens)
    from devicelab.sweep.run import check_config, sweep_device

    check_config(config, grid)
    # a device that is not there: one line now, before anything is printed
    device = sweep_device(config.device)
    from devicelab.data import load_dataset
    from devicelab.sweep.layouts import check_layout

    dataset = load_dataset(config)  # bad data fails here, before training
    check_layout(args.layout, device, len(dataset.embeddings))  # a layout that cannot take this data, too
    if args.model:  # a model that does not fit the data: one line now (built with the first seed)
        from devicelab.sweep.func_models import seeded_user_model
        from devicelab.training.user_check import check_user_model

        source = config.extra["model"]
        dataset, _shape = check_user_model(
            seeded_user_model(source, seeds[0]), dataset, config.device, None, source.get("inputs")
        )
    from devicelab.training.session import check_runs_dir

    check_runs_dir(config.runs_dir)
    if args.tensorboard is not None:  # a missing package or an unwritable folder: one line, before training
        from devicelab.report.tensorboard import check_logdir, summary_writer_class

        check_logdir(args.tensorboard) if args.tensorboard else summary_writer_class()
    from devicelab.i18n import _
    from devicelab.sweep.leaderboard import leaderboard, summary
    from devicelab.sweep.progress import SweepProgress
    from devicelab.sweep.run import run_sweep
    from devicelab.training.distributed import is_main
    from devicelab.training.interrupt import stop_on_sigint

    main = is_main()  # under torchrun rank 0 alone prints and writes; every rank trains its share
    progress = None if args.quiet or not main else SweepProgress()
    if progress and dataset.source.get("kind") != "builtin":  # a file's rows and roles, as train says them
        from devicelab.data import file_report

        print(file_report(dataset), flush=True)
    with stop_on_sigint() as stop:  # one scope for training and saving, as in train
        if progress:
            progress.start(len(grid), len(grid.hiddens), config.epochs, len(dataset.x_train))
        result = run_sweep(config, grid, layout=args.layout, dataset=dataset, on_log=progress, stop=stop)
        if not main:
            return 0
        if progress:
            progress.close()
        folder = _save(result)
    if args.tensorboard is not None:
        from devicelab.report.tensorboard import write_sweep_folder

        runs = write_sweep_folder(folder, args.tensorboard or None)  # from what the folder holds: no syncs
        if not args.json:
            print(
                _("TensorBoard: {n} runs in {folder}").format(
                    n=len(runs), folder=runs[0].parent if runs else args.tensorboard
                ),
                file=sys.stderr,
            )
    if args.json:
        json.dump(
            {"folder": str(folder), **_summary_json(folder), "top": result.ranked()[: args.top]},
            sys.stdout,
            indent=2,
            default=str,
        )
        print()
    else:
        print(leaderboard(result, args.top))
        print()
        print(summary(result, folder))
    if result.status == "interrupted":
        done = sum(len(g.specs) for g in result.groups)
        print(
            _(
                "devicelab: interrupted; {done} of {total} models (the last group partly trained) are in {folder}"
            ).format(done=done, total=len(grid), folder=folder),
            file=sys.stderr,
        )
        return 130
    return 0


def _hiddens(value) -> tuple[tuple[int, ...], ...]:
    """--hidden's shapes: the default is one shape (a tuple of ints), given ones a list of shapes."""
    shapes = (tuple(value),) if value and isinstance(value[0], int) else tuple(tuple(h) for h in value)
    unique = tuple(dict.fromkeys(shapes))
    if len(unique) != len(shapes):
        raise UserError(
            "--hidden: a shape given more than once", hint="give each shape once, e.g. --hidden 10 32,32"
        )
    return unique


def _summary_json(folder) -> dict:
    from devicelab.sweep.folder import SUMMARY

    return json.loads((folder / SUMMARY).read_text())


def _save(result):
    try:
        return result.save()
    except OSError as error:
        raise UserError(
            f"could not write the sweep folder under {result.config.runs_dir}: {error.strerror or error} "
            f"({error.filename})",
            hint="free some space or pass --runs-dir DIR with a writable folder, then sweep again",
        ) from None
