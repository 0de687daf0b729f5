"""devicelab info: the CPU, memory, CPU budget, software and GPUs of this machine; --measure times them."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show this machine's CPU, GPUs and software; --measure times them",
        description=(
            "Show the CPU (generation, cores, caches, deep-learning instructions), memory, the CPU budget this "
            "process really has, the software torch loaded, each GPU, and why no GPU is used when none is. "
            "--measure adds measured matmul TFLOP/s, memory and host<->device bandwidth, kernel launch cost "
            "(back to back, and launch + sync from an idle queue) and the cost of one sync, next to the "
            "theoretical peaks."
        ),
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true", help="print the report as JSON (schema in docs/info.md)"
    )
    output.add_argument("--markdown", action="store_true", help="print Markdown, for an issue or a chat")
    parser.add_argument(
        "--measure", action="store_true", help="also time matmuls, bandwidths and latencies (seconds)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="with --measure: smaller problems and fewer repeats"
    )
    parser.set_defaults(run=run)


def _progress(step: str) -> None:
    print(f"measuring {step} ...", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    import json

    from devicelab.errors import UserError
    from devicelab.hardware import collect
    from devicelab.hardware.report import to_dict
    from devicelab.report.hardware import format_markdown, format_terminal

    if args.quick and not args.measure:
        raise UserError("--quick only changes --measure", hint="use: devicelab info --measure --quick")
    report = collect(
        measure=args.measure, quick=args.quick, **({"on_step": _progress} if args.measure else {})
    )
    if args.json:
        text = json.dumps(to_dict(report), indent=2) + "\n"
    elif args.markdown:
        text = format_markdown(report)
    else:
        text = format_terminal(report)
    sys.stdout.write(text)
    return 0
