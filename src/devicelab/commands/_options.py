"""Options that several commands share and that are not part of a workload."""

from __future__ import annotations

import argparse

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
