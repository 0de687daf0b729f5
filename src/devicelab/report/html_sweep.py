"""The HTML report of a sweep folder (``devicelab sweep``): its summary, the leaderboard (in the order the
command line printed it), the ranked metric against the learning rate, the training curves of the best
models, one row per model, and the grid."""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from devicelab.i18n import _, pgettext, translate
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
    ranked = ranked_rows(rows, summary)
    best = ranked[0] if ranked else None
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
        (_("ranked by"), metric_label(summary["ranked_by"])) if summary.get("ranked_by") else None,
        (_("best model"), _best_text(best, summary.get("best_run"))) if best else None,
    ]
    page.add(_("Summary"), kv_table([p for p in pairs if p is not None]))
    page.add(_("Leaderboard"), _leaderboard(ranked, summary.get("ranked_by")))
    page.add(_("Learning rate"), _lr_chart(rows, summary.get("ranked_by")))
    page.add(_("Loss"), _curves(folder, ranked))
    headers = list(rows[0]) if rows else []
    page.add(_("Models"), table([Code(h) for h in headers], [[_number(r[h]) for h in headers] for r in rows]))
    grid = config.get("grid") or {}
    page.add(_("Grid"), kv_table([(Code(k), ", ".join(map(str, v))) for k, v in grid.items()]))
    return render_page(page)


def _metric_key(rows: Sequence[Mapping[str, str]], metric: str | None) -> str:
    """The results.csv column of the metric models are ranked by."""
    metric = metric or "test_loss"
    return f"final_{metric}" if rows and f"final_{metric}" in rows[0] else metric


def _lower_is_better(metric: str | None) -> bool:
    return not metric or "loss" in metric or "rmse" in metric


def ranked_rows(rows: Sequence[Mapping[str, str]], summary: Mapping) -> list[Mapping[str, str]]:
    """The models best first, in the order the command line printed them (summary.json's ``ranking``);
    for a folder written before it was saved: the summary's best model first, then by the ranked metric."""
    by_model = {str(r["model"]): r for r in rows}
    order = [str(m) for m in summary.get("ranking") or []]
    if order:
        return [by_model[m] for m in order if m in by_model] + [
            r for r in rows if str(r["model"]) not in order
        ]
    key, sign = (
        _metric_key(rows, summary.get("ranked_by")),
        1 if _lower_is_better(summary.get("ranked_by")) else -1,
    )

    def score(row: Mapping[str, str]) -> float:
        value = _number(row.get(key, ""))
        return sign * value if isinstance(value, float) and math.isfinite(value) else math.inf

    best = str((summary.get("best") or {}).get("model"))
    return sorted(sorted(rows, key=score), key=lambda r: str(r["model"]) != best)


def _best_text(best: Mapping[str, str], run: str | None) -> str:
    text = _("model {model} (hidden {hidden}, lr {lr}, seed {seed})").format(
        model=best["model"], hidden=best.get("hidden"), lr=best.get("lr"), seed=best.get("seed")
    )
    return f"{text}: {run}" if run else text


def _leaderboard(ranked: Sequence[Mapping[str, str]], metric: str | None) -> str:
    """The command line's leaderboard: rank, the model's settings, the ranked metric first among the
    metrics (so a narrow screen shows it), then the others."""
    if not ranked:
        return ""
    key = _metric_key(ranked, metric)
    others = [k for k in ranked[0] if k.startswith("final_") and k != key]
    metrics = [k for k in (key, *others) if k in ranked[0]]
    headers = [
        _("rank"),
        pgettext("sweep", "model"),
        _("hidden"),
        "lr",
        _("seed"),
        *(metric_label(k.removeprefix("final_")) for k in metrics),
    ]
    headers += [_("best epoch"), _("status")]
    body = [
        [rank, r["model"], r.get("hidden"), _number(r.get("lr", "")), r.get("seed"),
         *(_number(r[k]) for k in metrics), r.get("best_epoch"), status_text(r.get("status", ""))]
        for rank, r in enumerate(ranked, start=1)
    ]  # fmt: skip
    return table(headers, body, numeric_from=0)


def _lr_chart(rows: Sequence[Mapping[str, str]], metric: str | None) -> str:
    """The ranked metric against the learning rate, one line per hidden shape, median over the seeds."""
    key = _metric_key(rows, metric)
    series = []
    for hidden in dict.fromkeys(r.get("hidden") for r in rows):
        points = {}
        for r in rows:
            value, lr = _number(r.get(key, "")), _number(r.get("lr", ""))
            if (
                r.get("hidden") == hidden
                and isinstance(value, float)
                and math.isfinite(value)
                and isinstance(lr, float)
                and lr > 0
            ):
                points.setdefault(lr, []).append(value)
        lrs = sorted(points)
        if lrs:
            medians = [statistics.median(points[lr]) for lr in lrs]
            series.append(Series(_("hidden {hidden}").format(hidden=hidden), lrs, medians, True))
    label = _("{metric} (median over seeds)").format(metric=metric_label(key.removeprefix("final_")))
    return figure(line_chart(series, x_label=_("learning rate"), y_label=label, log_x=True)) if series else ""


def _curves(folder: Path, ranked: Sequence[Mapping[str, str]]) -> str:
    """The training loss of the best models (as the leaderboard ranks them)."""
    path = folder / "losses.npy"
    if not path.is_file() or not ranked:
        return ""
    import numpy as np

    losses = np.load(path)
    series = []
    for row in ranked[:SHOWN_CURVES]:
        curve = losses[int(row["model"])]
        done = [(i + 1, float(v)) for i, v in enumerate(curve) if v == v]
        x, y = downsample([d[0] for d in done], [d[1] for d in done], 400)
        series.append(Series(_("model {n}").format(n=row["model"]), x, y))
    values = [v for s in series for v in s.y]
    log_y = bool(values) and min(values) > 0 and max(values) / min(values) > 10
    return figure(line_chart(series, x_label=_("epoch"), y_label=_("train loss"), log_y=log_y))
