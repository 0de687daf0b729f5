"""The command line: a small dispatcher over one module per verb in ``devicelab.commands``.

Each command module exposes ``register(subparsers)``, which adds its parser and sets ``run``, a function
``(argparse.Namespace) -> int``. Command modules import torch and friends inside ``run`` only, so
``devicelab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence

from devicelab import __version__
from devicelab.errors import DevicelabWarning, UserError
from devicelab.i18n import _, set_language, translate

COMMANDS = ("info", "train", "predict", "bench", "profile", "report", "sweep")


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (what is wrong, and where to read more) and exit status 2,
    like every other bad input; subcommand parsers inherit the class."""

    def error(self, message: str):
        # the same prefix as every other bad input ("devicelab: error: ..."), the command in the hint
        line = _("devicelab: error: {message} (see '{prog} --help')").format(
            prog=self.prog, message=translate(message)
        )
        self.exit(2, line + "\n")


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
    _add_lang(parser, default=None)
    return parser


def _add_lang(parser: argparse.ArgumentParser, default) -> None:
    """--lang on the top parser and on every (sub)command, so it may come before or after the command;
    below the top, SUPPRESS keeps a subcommand from resetting a value given before it."""
    parser.add_argument(
        "--lang",
        choices=("en", "zh"),
        default=default,
        help="output language: en or zh (default: $DEVICELAB_LANG, else the locale, else en)",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                _add_lang(sub, default=argparse.SUPPRESS)


def localized_one_line(error: UserError) -> str:
    """``UserError.one_line()`` in the current language: the message and the hint each translated."""
    message = translate(error.message)
    if not error.hint:
        return message
    return _("{message} ({hint})").format(message=message, hint=translate(error.hint))


def _lang_in(argv: Sequence[str]) -> str | None:
    """--lang as given on the command line, read before parsing so that parse errors use it too."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    set_language(_lang_in(argv))
    try:
        from devicelab.commands.profile import script_after_json

        argv = script_after_json(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        set_language(args.lang)
        if args.command is None:
            parser.print_help()
            return 0
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return int(args.run(args) or 0)
    except UserError as error:
        print(_("devicelab: error: {message}").format(message=localized_one_line(error)), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(_("devicelab: interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `devicelab info | head`: the reader went away; nothing left to say.
        return 0


def console() -> None:
    """The ``devicelab`` program (and ``python -m devicelab``): ``main()``, then the process ends with its
    status. A torchrun rank in which devicelab joined a process group (``train``, ``sweep``) ends without
    Python's interpreter teardown: everything it writes is written and flushed by then, and Gloo's C++
    threads, torn down in no set order while the interpreter finalizes, can abort a rank that finished
    cleanly ("terminate called without an active exception"). A profiled script's own process ends as usual
    (its ``atexit`` handlers run)."""
    from devicelab.training import launch

    if launch.launched():
        import faulthandler

        faulthandler.enable()  # a rank that aborts says where, with every thread's Python stack
    code = main()
    if not launch.joined():
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing left to say
            pass
    os._exit(code)


def _one_line_warnings(show):
    """devicelab's own warnings as ``devicelab: warning: ...`` on stderr, each once (a check the CLI runs
    before the run folder is made runs again in the library); any other as ``show`` does."""
    said: set[str] = set()

    def shown(message, category, filename, lineno, file=None, line=None) -> None:
        if not issubclass(category, DevicelabWarning):
            return show(message, category, filename, lineno, file, line)
        if str(message) not in said:
            said.add(str(message))
            text = _("devicelab: warning: {warning}").format(warning=translate(str(message)))
            print(text, file=file or sys.stderr, flush=True)

    return shown


if __name__ == "__main__":
    sys.exit(main())
