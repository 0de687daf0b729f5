"""``--model FILE.py:Class`` and ``--model-args JSON``: train the user's own module (``devicelab train``)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("your own model")
    group.add_argument(
        "--model",
        metavar="FILE.py:CLASS",
        help="train your own torch.nn.Module instead of devicelab's MLP: a class (or a function returning a "
        "module) in a file, or package.module:factory; it takes the data's features and returns one score "
        "per class (or one value); an MLP found by tracing trains on the fast path (--hidden, --activation "
        "and --dropout do not apply)",
    )
    group.add_argument(
        "--model-inputs",
        choices=("float", "int"),
        help="int: the file's feature cells reach the model as int64 (category codes or integer IDs for an "
        "nn.Embedding; every cell must be a whole number: use --scaler none); default: float32",
    )
    group.add_argument(
        "--model-args",
        metavar="JSON",
        help="keyword arguments for the constructor, e.g. '{\"hidden\": 16}' (default: none)",
    )


def with_model(config, args: argparse.Namespace):
    """``config`` recording where ``--model`` points (the file's path and sha256, the arguments)."""
    if not getattr(args, "model", None):
        return config
    from devicelab.training.user_model import parse_args, record

    source = record(args.model, parse_args(args.model_args))
    if getattr(args, "model_inputs", None) == "int":  # kept with the run: resume and sweep read it too
        source["inputs"] = "int"
    return dataclasses.replace(config, extra={**config.extra, "model": source})


def user_model(config, dataset, run_dir: str | Path | None = None):
    """The user's module the run trains (None: devicelab's MLP), constructed from its recorded source
    and checked against ``dataset`` (before a run folder is made); a resumed run's from the saved copy
    if the original file changed or is gone."""
    source = config.extra.get("model")
    if not source:
        return None
    import torch

    from devicelab.training.user_model import UserModel, build

    if run_dir is None:  # a new run: the initial weights from --seed, as devicelab's own MLP's
        torch.manual_seed(config.seed if config.init_seed is None else config.init_seed)
    from devicelab.training.user_check import check_user_model

    module = build(source, Path(run_dir) if run_dir else None)
    check_user_model(module, dataset, config.device, None, source.get("inputs"))
    return UserModel(module, source=source)


def check_same_model(args: argparse.Namespace, checkpoint) -> None:
    """--model with --resume must name the run's own model (it continues from the run's source); a
    ``devicelab.fit`` run cannot be resumed here (its arrays are not in the run folder)."""
    from devicelab.errors import UserError

    if checkpoint.preprocessing.get("source", {}).get("kind") == "arrays":
        raise UserError(
            f"run {checkpoint.run_dir} was trained by devicelab.fit on arrays, which a run folder does not keep",
            hint="train it further in Python: devicelab.fit(model, X, y, ...) with the model loaded from the run",
        )
    saved = checkpoint.config.extra.get("model") or {}
    if args.model and with_model(checkpoint.config, args).extra["model"] != saved:
        trained = (
            f"{saved.get('path') or saved.get('module')}:{saved.get('name')}" if saved else "devicelab's MLP"
        )
        raise UserError(
            f"run {checkpoint.run_dir} trained {trained}, not --model {args.model}",
            hint="leave --model out to continue the run with its own model, or start a new run",
        )
