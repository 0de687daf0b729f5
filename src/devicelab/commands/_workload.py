"""The data, model and optimisation options shared by train, profile and bench (one definition)."""

from __future__ import annotations

import argparse

from devicelab.training.config import EARLY_STOP_PATIENCE, TrainConfig

_DEFAULTS = TrainConfig()


def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes widths like 10 or 64,64, not {text!r}") from None
    if not widths or any(w <= 0 for w in widths):
        raise argparse.ArgumentTypeError(f"--hidden widths must be positive integers, got {text!r}")
    return widths


def add_workload_arguments(
    parser: argparse.ArgumentParser, *, epochs_default: int | None = None, resumable: bool = False
) -> None:
    """Add the options that define a training workload; defaults are the seed workload.

    ``resumable=True`` (train) leaves ``--dataset`` and ``--epochs`` as None when not given, so that
    ``--resume`` can tell an explicit value from the default; ``config_from_args`` fills the defaults in.
    """
    data = parser.add_argument_group("data (default: the lesson's Iris split)")
    data.add_argument(
        "--dataset",
        default=None if resumable else _DEFAULTS.dataset,
        help=f"built-in toy set: iris, wine, breast_cancer, digits, diabetes (default: {_DEFAULTS.dataset})",
    )
    data.add_argument(
        "--data", metavar="FILE", help="train on a CSV (.csv, .csv.gz, .zst) or Parquet file (needs --target)"
    )
    data.add_argument("--target", metavar="COLUMN", help="the CSV column to predict")
    data.add_argument("--task", choices=("classification", "regression"), help="inferred when not given")
    data.add_argument("--test-size", type=float, default=_DEFAULTS.test_size, help="default: %(default)s")
    data.add_argument(
        "--seed", type=int, default=_DEFAULTS.seed, help="split and init seed (default: %(default)s)"
    )
    data.add_argument("--scaler", choices=("minmax", "standard", "none"), default=_DEFAULTS.scaler)
    data.add_argument(
        "--dropna", action="store_true", help="drop rows with missing feature cells (default: impute them)"
    )
    _add_column_options(data)

    model = parser.add_argument_group("model")
    model.add_argument(
        "--hidden",
        type=_hidden,
        default=_DEFAULTS.hidden,
        help="hidden widths, e.g. 10 or 64,64 (default: 10)",
    )
    model.add_argument("--activation", choices=("relu", "gelu", "tanh"), default=_DEFAULTS.activation)
    model.add_argument("--dropout", type=float, default=_DEFAULTS.dropout)

    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default=_DEFAULTS.optimizer)
    optim.add_argument("--lr", type=float, default=_DEFAULTS.lr, help="learning rate (default: %(default)s)")
    optim.add_argument("--momentum", type=float, default=_DEFAULTS.momentum)
    optim.add_argument("--weight-decay", type=float, default=_DEFAULTS.weight_decay)
    epochs = epochs_default if epochs_default is not None else _DEFAULTS.epochs
    optim.add_argument(
        "--epochs",
        type=int,
        default=None if resumable else epochs,
        help=f"default: {epochs}"
        + ("; with --resume: the total to reach (default: the run's own)" if resumable else ""),
    )
    optim.add_argument("--batch-size", type=int, help="mini-batch size (default: full batch)")
    optim.add_argument(
        "--threads", type=int, help="CPU threads for torch (default: chosen by devicelab for the workload)"
    )
    if resumable:
        _defaults_to_none(parser)


# What --resume may change: how far and where the run goes on. Everything else is the run's own.
RESUME_MAY_CHANGE = {"epochs", "threads", "data", "dataset", "target", "help"}


def _defaults_to_none(parser: argparse.ArgumentParser) -> None:
    """Every workload option defaults to None (its help still shows the real default), so that a value
    given with --resume can be told from one left out: see ``options_fixed_by_run``."""
    fixed = []
    for action in parser._actions:
        if action.dest in RESUME_MAY_CHANGE:
            continue
        fixed.append(action)
        if action.help and "%(default)s" in action.help:
            action.help = action.help.replace("%(default)s", str(action.default))
        action.default = None
    parser.set_defaults(fixed_by_run=tuple((a.dest, a.option_strings[0]) for a in fixed))


def options_fixed_by_run(args: argparse.Namespace) -> list[tuple[str, str]]:
    """``(dest, option)`` of the workload options given on the command line, which a resumed run keeps
    as they were (``("lr", "--lr")``)."""
    return [
        (dest, option)
        for dest, option in getattr(args, "fixed_by_run", ())
        if getattr(args, dest) is not None
    ]


def _given(args: argparse.Namespace, name: str):
    """An option's value, or the seed workload's default when it was left out (None)."""
    value = getattr(args, name)
    return getattr(_DEFAULTS, name) if value is None else value


def _names(text: str, what: str = "column names like A or A,B") -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return names


def _cells(text: str) -> list[str]:
    return _names(text, "cell values like NA or NA,-999 (empty cells are missing already)")


def _add_column_options(data: argparse._ArgumentGroup) -> None:
    """What to do with a file's columns and cells, when the inferred roles are not what you want."""
    columns = {"type": _names, "action": "extend", "metavar": "A,B"}
    data.add_argument("--features", **columns, help="only these columns are features")
    data.add_argument("--ignore", **columns, help="never use these columns as features")
    data.add_argument(
        "--categorical", **columns, help="treat these columns as categories (e.g. integer codes)"
    )
    data.add_argument(
        "--numeric",
        **columns,
        help="treat these columns as numbers (cells that do not read as one are missing)",
    )
    data.add_argument(
        "--target-transform",
        choices=("auto", "none", "standard", "robust", "log"),
        help="how a regression target is scaled for training (default auto: robust or log when it has "
        "extreme values, else standard)",
    )
    data.add_argument(
        "--na-values",
        **{**columns, "type": _cells, "metavar": "X,Y"},
        help="cells that mean missing, also in the target (where only empty cells are missing otherwise)",
    )
    data.add_argument(
        "--val-size",
        type=float,
        help="share of the training rows held out for validation (default: 0.15 for a file, 0 for built-in sets)",
    )
    data.add_argument(
        "--early-stop",
        type=int,
        nargs="?",
        const=EARLY_STOP_PATIENCE,
        metavar="PATIENCE",
        help="stop when the validation loss has not improved for PATIENCE log points and keep the best weights "
        f"(default: on with {EARLY_STOP_PATIENCE} for a file, off for built-in sets; 0: off)",
    )


def adjust_option(parser: argparse.ArgumentParser, dest: str, **attributes) -> None:
    """Change a shared option for one command (its ``help``, its ``default``), e.g. ``--threads``, which
    each command decides in its own way."""
    (action,) = [a for a in parser._actions if a.dest == dest]
    for name, value in attributes.items():
        setattr(action, name, value)


def config_from_args(args: argparse.Namespace, **overrides) -> TrainConfig:
    """A TrainConfig from parsed workload options and ``overrides`` (validated as it is built)."""
    options = dict(
        dataset=args.dataset or _DEFAULTS.dataset,
        data=args.data,
        target=args.target,
        task=args.task,
        test_size=_given(args, "test_size"),
        seed=_given(args, "seed"),
        scaler=_given(args, "scaler"),
        dropna=_given(args, "dropna"),
        features=tuple(args.features) if getattr(args, "features", None) else None,
        ignore=tuple(getattr(args, "ignore", None) or ()),
        categorical=tuple(getattr(args, "categorical", None) or ()),
        numeric=tuple(getattr(args, "numeric", None) or ()),
        target_transform=getattr(args, "target_transform", None) or "auto",
        na_values=tuple(getattr(args, "na_values", None) or ()),
        val_size=getattr(args, "val_size", None),
        early_stop=getattr(args, "early_stop", None),
        hidden=tuple(_given(args, "hidden")),
        activation=_given(args, "activation"),
        dropout=_given(args, "dropout"),
        optimizer=_given(args, "optimizer"),
        lr=_given(args, "lr"),
        momentum=_given(args, "momentum"),
        weight_decay=_given(args, "weight_decay"),
        epochs=args.epochs if args.epochs is not None else _DEFAULTS.epochs,
        batch_size=args.batch_size,
        threads=args.threads,
        device=getattr(args, "device", "auto") or "auto",
    )
    return TrainConfig(**{**options, **overrides})
