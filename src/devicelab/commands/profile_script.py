"""``devicelab profile SCRIPT.py [ARGS...]`` and ``-m MODULE [ARGS...]``: run the user's program under the
watcher, then print what was measured. The program's output, exit status and errors stay its own: its
exception is shown as its traceback with one devicelab line under it; Ctrl-C prints what was measured.

With ``--json`` alone (or ``--json -``) stdout is the JSON document and nothing else, so that it can be
piped or redirected (``> profile.json``, ``| jq``): the program's own output goes to stderr while it runs
(still on the terminal), and the document is printed once it has ended."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from devicelab.errors import UserError


def run_program(args: argparse.Namespace, plot: tuple[Path, Path | None] | None) -> int:
    from devicelab.fsutil import atomic_write_text
    from devicelab.profile import api, script
    from devicelab.report.profile import to_json
    from devicelab.report.profile_watch import format_watch

    if args.module is not None:
        if not args.module:
            raise UserError("-m needs a module name", hint="devicelab profile -m package.module [ARGS...]")
        program = script.check("module", args.module[0], tuple(args.module[1:]))
    else:
        program = script.check("script", args.script[0], tuple(args.script[1:]))
    json_path = None if args.json in (None, "-") else _json_path(args.json)
    steps = args.steps if args.steps is not None else api.STEPS
    warmup = args.warmup if args.warmup is not None else api.WARMUP
    with _stdout_to_stderr() if args.json == "-" else contextlib.nullcontext():
        report, outcome = api.profile_program(program, warmup=warmup, steps=steps, stop_after=args.stop_after)
    sys.stdout.flush()
    if report is None or report.breakdown is None:
        if outcome.error is not None:
            print(outcome.error, file=sys.stderr, end="")
            raise UserError(f"{program.label} raised {outcome.error_line} before a step was measured")
        if outcome.interrupted:
            raise KeyboardInterrupt
        if report is None and outcome.exit_code:  # sys.exit(2) from its argument parser, say
            raise UserError(
                f"{program.label} exited with status {outcome.exit_code} before it trained or called a module",
                hint="check its arguments: everything after the script is its own",
            )
        if report is None:
            raise api.never_trained(program)
        raise UserError(
            f"{program.label} ended before a step was measured (warm-up {warmup} + {steps} baseline steps)",
            hint="lower --warmup and --steps",
        )
    if args.json == "-":
        print(to_json(report))
    else:
        print("\n" + format_watch(report))
        if json_path is not None:  # absolute, found before the program ran: it may change folder
            atomic_write_text(json_path, to_json(report) + "\n")
            print(f"wrote {args.json}", file=sys.stderr)
    if plot is not None:
        _write_plot(report, plot, args.plot)
    if outcome.stopped:
        print(f"devicelab: stopped {program.label} once measured (--stop-after): the rest of it did not run",
              file=sys.stderr)  # fmt: skip
    if outcome.interrupted:
        print("devicelab: interrupted; the profile above covers the steps measured before", file=sys.stderr)
    if outcome.error is not None:
        print(outcome.error, file=sys.stderr, end="")
        print(f"devicelab: {program.label} raised {outcome.error_line} (after the steps profiled above)",
              file=sys.stderr)  # fmt: skip
    if outcome.hard_exit:  # the program ends its process at once (no atexit, no cleanup): so does this
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(outcome.exit_code)
    return outcome.exit_code


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """The program's output to stderr: its ``print`` (``sys.stdout``) and what its child processes or C
    code write to file descriptor 1 (pointed at 2 meanwhile, where stdout is a real file)."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError):  # no file descriptor 1 (an embedding host): sys.stdout alone
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for stream in (sys.stdout, sys.__stdout__, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()  # what went to descriptor 1 meanwhile stays on stderr
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def _json_path(path: str) -> Path:
    """``--json FILE`` as an absolute path, checked before the program runs (and may change folder)."""
    target = Path(path).absolute()
    if target.suffix.lower() in (".py", ".pyw"):  # --json=train.py: never write over the user's code
        raise UserError(f"--json {path}: that is a Python file", hint="write the report to FILE.json")
    if not target.parent.is_dir():
        raise UserError(f"--json {path}: {target.parent} is not a folder", hint="choose another path")
    return target


def _write_plot(report, paths: tuple[Path, Path | None], spec: str) -> None:
    from devicelab.fsutil import atomic_write_text
    from devicelab.report.profile import to_json
    from devicelab.report.profile_plots import write_profile_png

    png, report_json = paths
    try:
        write_profile_png(report, png)
        if report_json is not None:
            atomic_write_text(report_json, to_json(report) + "\n")
    except OSError as error:
        raise UserError(f"cannot write --plot {spec}: {error.strerror or error}") from None
    print(f"wrote {png}" + (f" and {report_json}" if report_json else ""), file=sys.stderr)
