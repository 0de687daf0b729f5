"""Options that several commands share and that are not part of a workload."""

from __future__ import annotations

import argparse
from pathlib import Path

from devicelab.errors import UserError

TENSORBOARD_NEEDS = "needs: pip install 'devicelab[tensorboard]'"


def add_tensorboard_option(
    group: argparse._ActionsContainer, what: str, default_dir: str, const: str = ""
) -> None:
    """``--tensorboard [DIR]``: ``what`` it writes, where by default (``const``: the value with no DIR)."""
    group.add_argument(
        "--tensorboard",
        nargs="?",
        const=const,
        metavar="DIR",
        help=f"{what} (default DIR: {default_dir}; {TENSORBOARD_NEEDS})",
    )


def check_output_file(option: str, value: str | None) -> None:
    """Fail before a long run, not after it, when the file an option names cannot be written."""
    if not value:
        return
    path = Path(value)
    if path.is_dir():
        raise UserError(f"--{option} {value}: is a folder", hint="give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"--{option} {value}: cannot create its folder {str(path.parent)!r} ({error.strerror})",
            hint="give a path whose folders can be created",
        ) from None
