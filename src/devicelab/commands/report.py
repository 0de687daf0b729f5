"""devicelab report: one self-contained HTML file of a run folder or of a command's JSON, to share."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devicelab.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML file of a run folder or a command's JSON, to share",
        description=(
            "Write one HTML file (styles and charts inside it: no network, no JavaScript; readable on a phone, "
            "printable) of a run folder written by 'devicelab train', or of the JSON that 'info --json', "
            "'bench logging --json', 'bench speed --json' or 'profile --json' printed. A run that was "
            "interrupted or diverged says so at the top. With --lang zh the report is in Chinese."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="a run folder, or a JSON file from a devicelab command")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE.html",
        help="where to write it (default: report.html in the run folder, or PATH with .html for a JSON file)",
    )
    parser.set_defaults(run=run)


def default_output(path: Path) -> Path:
    return path / "report.html" if path.is_dir() else path.with_suffix(".html")


def run(args: argparse.Namespace) -> int:
    from devicelab.fsutil import atomic_write_text, check_output
    from devicelab.i18n import _
    from devicelab.report.html import build_report

    path = Path(args.path)
    output = Path(args.output) if args.output else default_output(path)
    if output.is_dir():
        raise UserError(
            _("-o {output}: is a folder").format(output=output), hint=_("give a file name, e.g. report.html")
        )
    run_dir = path if path.is_dir() else None
    check_output(
        output, "-o", inputs=[] if path.is_dir() else [path], run_dir=run_dir, suffixes=(".html", ".htm")
    )
    html = build_report(path)  # bad input fails here, before anything is written
    try:
        atomic_write_text(output, html)
    except OSError as error:
        raise UserError(
            _("cannot write {output}: {reason}").format(output=output, reason=error.strerror or error),
            hint=_("give -o a path in a folder you can write to"),
        ) from None
    print(
        _("report: {output} ({size} kB)").format(output=output, size=round(len(html.encode()) / 1000)),
        file=sys.stderr,
    )
    return 0
