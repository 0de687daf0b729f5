"""One self-contained HTML file to share: a run folder, a sweep folder, or the JSON of ``info``, ``bench logging``,
``bench speed`` or ``profile``.

Styles and charts are inline (CSS and SVG): no network, no JavaScript, readable on a phone (the layout
is one column and tables scroll sideways), printable (a print style sheet). A run that did not complete
says so in a banner at the top. Labels go through the message catalogue, so ``--lang zh`` gives a
Chinese report with the same numbers.

``build_report(path) -> str`` reads and renders; ``html_run.render_run`` and the ``html_json.render_*``
functions take what is already read, for callers that hold it; ``html_page`` has the building blocks.
"""

from __future__ import annotations

import json
from pathlib import Path

from devicelab.errors import UserError
from devicelab.i18n import _
from devicelab.report.html_json import (
    detect_kind,
    render_bench_logging,
    render_bench_speed,
    render_info,
    render_json,
    render_profile,
)
from devicelab.report.html_run import render_run
from devicelab.report.html_sweep import is_sweep_folder, render_sweep


def build_report(path: str | Path) -> str:
    """The HTML report of a run folder or of a devicelab JSON file; UserError for anything else."""
    path = Path(path)
    if path.is_dir():
        if not any(
            (path / name).exists() for name in ("summary.json", "config.json", "metrics.csv", "results.csv")
        ):
            raise UserError(
                _("{path} is not a run folder (no summary.json, config.json or metrics.csv in it)").format(
                    path=path
                ),
                hint=_("give a folder that devicelab train wrote, e.g. runs/20250101-120000"),
            )
        if is_sweep_folder(path):
            return render_sweep(path)
        return render_run(path)
    if not path.exists():
        raise UserError(
            _("{path} does not exist").format(path=path), hint=_("give a run folder or a JSON file")
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(
            _("{path} is not JSON ({error})").format(path=path, error=type(error).__name__),
            hint=_("give a run folder or the output of info, bench or profile with --json"),
        ) from None
    kind = detect_kind(doc)
    if kind == "info":
        return render_info(doc)
    if kind == "bench-logging":
        return render_bench_logging(doc)
    if kind == "profile":
        return render_profile(doc)
    if kind == "bench-speed":
        return render_bench_speed(doc)
    return render_json(doc, path.name)
