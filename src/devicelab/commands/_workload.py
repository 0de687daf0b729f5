"""The data, model and optimisation options shared by train, profile and bench (one definition)."""

from __future__ import annotations

import argparse

from devicelab.training.config import TrainConfig, validate

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
    data.add_argument("--data", metavar="FILE.csv", help="train on a CSV file instead (needs --target)")
    data.add_argument("--target", metavar="COLUMN", help="the CSV column to predict")
    data.add_argument("--task", choices=("classification", "regression"), help="inferred when not given")
    data.add_argument("--test-size", type=float, default=_DEFAULTS.test_size, help="default: %(default)s")
    data.add_argument(
        "--seed", type=int, default=_DEFAULTS.seed, help="split and init seed (default: %(default)s)"
    )
    data.add_argument("--scaler", choices=("minmax", "standard", "none"), default=_DEFAULTS.scaler)
    data.add_argument("--dropna", action="store_true", help="drop CSV rows with empty or NaN cells")

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


def adjust_option(parser: argparse.ArgumentParser, dest: str, **attributes) -> None:
    """Change a shared option for one command (its ``help``, its ``default``), e.g. ``--threads``, which
    each command decides in its own way."""
    (action,) = [a for a in parser._actions if a.dest == dest]
    for name, value in attributes.items():
        setattr(action, name, value)


def config_from_args(args: argparse.Namespace, **overrides) -> TrainConfig:
    """A TrainConfig from parsed workload options, validated."""
    config = TrainConfig(
        dataset=args.dataset or _DEFAULTS.dataset,
        data=args.data,
        target=args.target,
        task=args.task,
        test_size=args.test_size,
        seed=args.seed,
        scaler=args.scaler,
        dropna=args.dropna,
        hidden=tuple(args.hidden),
        activation=args.activation,
        dropout=args.dropout,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        epochs=args.epochs if args.epochs is not None else _DEFAULTS.epochs,
        batch_size=args.batch_size,
        threads=args.threads,
        device=getattr(args, "device", "auto") or "auto",
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    validate_config(config)
    return config


def validate_config(config: TrainConfig) -> None:
    """Gather every problem with the numbers of a config into one UserError."""
    validate(config)
