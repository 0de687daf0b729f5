"""The HTML report of a sweep folder (``devicelab sweep``): its summary, the training curves of the best
models, one row per model, and the grid."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from devicelab.i18n import _, translate
from devicelab.i18n.labels import metric_label, status_text
from devicelab.report.html_page import Code, Page, figure, kv_table, render_page, table
from devicelab.report.svg import Series, downsample, line_chart

SHOWN_CURVES = 6  # the best models' training curves; more lines than this cannot be told apart


def is_sweep_folder(folder: Path) -> bool:
    return (folder / "results.csv").is_file()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def render_sweep(folder: Path) -> str:
    summary = (
        json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        if (folder / "summary.json").is_file()
        else {}
    )
    config = (
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if (folder / "config.json").is_file()
        else {}
    )
    rows = _rows(folder / "results.csv")
    page = Page(
        title=_("Sweep {name}").format(name=folder.resolve().name),
        subtitle=_("{models} models of {dataset}, ranked by {metric}").format(
            models=summary.get("models", len(rows)), dataset=summary.get("dataset", "?"),
            metric=metric_label(summary.get("ranked_by", "")),
        ),
        banner=None if summary.get("status", "completed") == "completed" else (
            "warn", _("This sweep did not complete: {status}.").format(status=status_text(summary.get("status", "?")))
        ),
    )  # fmt: skip
    pairs = [
        (_("status"), status_text(summary["status"])) if "status" in summary else None,
        (_("device"), f"{summary['device']}: {translate(summary.get('layout_reason') or '')}")
        if summary.get("device")
        else None,
        (
            _("wall time"),
            _("{seconds:.2f} s ({us:.2f} µs per model-epoch)").format(
                seconds=summary["wall_s"], us=summary.get("us_per_model_epoch", 0.0)
            ),
        )
        if "wall_s" in summary
        else None,
        (_("host syncs"), summary.get("host_syncs")),
        (_("best model"), summary.get("best_run")),
    ]
    page.add(_("Summary"), kv_table([p for p in pairs if p is not None]))
    page.add(_("Loss"), _curves(folder, rows, summary.get("ranked_by")))
    headers = list(rows[0]) if rows else []
    page.add(_("Models"), table([Code(h) for h in headers], [[_number(r[h]) for h in headers] for r in rows]))
    grid = config.get("grid") or {}
    page.add(_("Grid"), kv_table([(Code(k), ", ".join(map(str, v))) for k, v in grid.items()]))
    return render_page(page)


def _curves(folder: Path, rows: Sequence[Mapping[str, str]], metric: str | None) -> str:
    path = folder / "losses.npy"
    if not path.is_file() or not rows:
        return ""
    import numpy as np

    losses = np.load(path)
    key = f"final_{metric}" if metric else "final_test_loss"
    better_low = not metric or "loss" in metric or "rmse" in metric

    def score(row: Mapping[str, str]) -> float:
        value = _number(row.get(key, ""))
        return (value if better_low else -value) if isinstance(value, float) else float("inf")

    best = sorted(rows, key=score)[:SHOWN_CURVES]
    series = []
    for row in best:
        curve = losses[int(row["model"])]
        done = [(i + 1, float(v)) for i, v in enumerate(curve) if v == v]
        x, y = downsample([d[0] for d in done], [d[1] for d in done], 400)
        series.append(Series(_("model {n}").format(n=row["model"]), x, y))
    values = [v for s in series for v in s.y]
    log_y = bool(values) and min(values) > 0 and max(values) / min(values) > 10
    return figure(line_chart(series, x_label=_("epoch"), y_label=_("train loss"), log_y=log_y))
