"""The command line: a small dispatcher over one module per verb in ``devicelab.commands``.

Each command module exposes ``register(subparsers)``, which adds its parser and sets ``run``, a function
``(argparse.Namespace) -> int``. Command modules import torch and friends inside ``run`` only, so
``devicelab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from devicelab import __version__
from devicelab.errors import UserError

COMMANDS = ("info", "train", "predict", "bench", "profile")


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (what is wrong, and where to read more) and exit status 2,
    like every other bad input; subcommand parsers inherit the class."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="devicelab",
        description=(
            "Know your hardware and how fast it really is (info), train on it correctly and fast "
            "(train, predict), and see where the training time goes (bench, profile)."
        ),
        epilog="Run 'devicelab COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"devicelab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"devicelab.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return int(args.run(args) or 0)
    except UserError as error:
        print(f"devicelab: error: {error.one_line()}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("devicelab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `devicelab info | head`: the reader went away; nothing left to say.
        return 0


if __name__ == "__main__":
    sys.exit(main())
