"""The HTML report of a run folder: what ``devicelab train`` printed, the curves, the log points, the
config, the versions and the hardware; a banner at the top when the run did not complete."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from devicelab.errors import UserError, one_line
from devicelab.i18n import N_, _, ngettext, translate
from devicelab.i18n.labels import metric_label, role_label, status_text
from devicelab.report.html_page import Code, Page, figure, kv_table, render_page, table
from devicelab.report.records import early_stopping_line, hardware_summary
from devicelab.report.run_lines import cv_line, validation_line
from devicelab.report.svg import Series, downsample, line_chart

METRIC_KINDS = {"accuracy": N_("accuracy"), "rmse": "RMSE", "r2": "R²"}  # the axis of each kind of metric


def _read_json(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise UserError(
            _("cannot read {path}: {error}").format(path=path, error=error),
            hint=_("is this a devicelab run folder?"),
        ) from None
    if not isinstance(record, dict):  # valid JSON, but not the record devicelab wrote (edited, replaced)
        raise UserError(
            _("{path} holds a JSON {kind}, not the record devicelab writes").format(
                path=path, kind=type(record).__name__
            ),
            hint=_("is this a devicelab run folder?"),
        )
    return record


def _read_metrics(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
    except (OSError, ValueError, TypeError, AttributeError) as error:  # a cell no number, a ragged row
        raise _damaged(path, error) from None


def _read_losses(path: Path):
    if not path.is_file():
        return None
    import numpy as np

    try:
        losses = np.asarray(np.load(path), dtype=np.float64)
        if losses.ndim != 1:
            raise ValueError(f"{losses.ndim}-d array, not one loss per epoch")
    except (OSError, ValueError, TypeError) as error:  # not an .npy of numbers (pickles are refused)
        raise _damaged(path, error) from None
    return losses


def _damaged(path: Path, error: Exception) -> UserError:
    return UserError(
        _("cannot read {path}: {error}").format(path=path, error=one_line(error)),
        hint=_("is this a devicelab run folder?"),
    )


def run_banner(summary: Mapping | None, folder: Path) -> tuple[str, str] | None:
    if summary is None:
        return "bad", _(
            "Incomplete run: {folder} has no summary.json (training or saving did not finish)."
        ).format(folder=folder)
    done, total = summary.get("epochs_done"), summary.get("epochs_total")
    if summary.get("status") == "interrupted":
        return "warn", _(
            "Interrupted after epoch {done} of {total}; continue with: devicelab train --resume {folder}"
        ).format(done=done, total=total, folder=folder)
    if summary.get("status") == "diverged":
        return "bad", _(
            "Diverged: the loss became NaN or infinite at epoch {epoch}; the saved weights are from epoch {done}."
        ).format(epoch=summary.get("diverged_epoch"), done=done)
    return None


def data_text(summary: Mapping, source: Mapping | None) -> str:
    """Where the rows came from (the file, or the built-in set's name) and how they were split."""
    source = source or {}
    name = Path(source["path"]).name if source.get("path") else summary.get("dataset", "?")
    rows = summary.get("rows") or {}
    if not rows:
        return str(name)
    return _("{name}: {train} train, {val} validation, {test} test rows").format(
        name=name, train=rows.get("train"), val=rows.get("val", 0), test=rows.get("test")
    )


def baseline_text(baseline: Mapping) -> str:
    """The linear baseline fitted beside the network: its model and test metric(s)."""
    model = translate(str(baseline.get("model", "?")))
    metric = baseline.get("test_metric")
    if isinstance(metric, Mapping):
        shown = ", ".join(
            f"{metric_label(k)} {v:.4f}" for k, v in metric.items() if isinstance(v, int | float)
        )
    elif isinstance(metric, int | float):
        name = baseline.get("metric")
        shown = f"{metric_label(name)} {metric:.4f}" if name else f"{metric:.4f}"
    else:
        shown = str(metric) if metric is not None else ""
    return f"{model}: {shown}" if shown else model


def run_summary_pairs(
    summary: Mapping, folder: Path, source: Mapping | None = None
) -> list[tuple[str, object]]:
    """What ``devicelab train`` prints at the end, from summary.json (``source``: preprocessing.json's)."""
    threads = summary.get("threads")
    device = summary.get("device")
    if device == "cpu" and threads:
        device = ngettext("{device} ({threads} thread)", "{device} ({threads} threads)", threads).format(
            device=device, threads=threads
        )
    step = summary.get("step") or {}
    pairs: list[tuple[str, object]] = [
        (_("run folder"), str(folder)),
        (
            _("status"),
            _("{status} ({done} of {total} epochs)").format(
                status=status_text(summary.get("status", "?")),
                done=summary.get("epochs_done"),
                total=summary.get("epochs_total"),
            ),
        ),
        (_("data"), data_text(summary, source)),
        (_("device"), device),
        (_("step"), translate(step.get("reason") or step.get("path") or "")),
        (
            _("wall time"),
            _("{seconds:.2f} s for {epochs} epochs ({us:.1f} µs/epoch)").format(
                seconds=summary.get("wall_s", 0.0),
                epochs=summary.get("session_epochs"),
                us=summary.get("us_per_epoch", 0.0),
            ),
        ),
        (_("host syncs"), _("{n} (one per log point)").format(n=summary.get("host_syncs"))),
    ]
    if summary.get("early_stopping"):
        pairs.append(
            (_("early stopping"), early_stopping_line(summary["early_stopping"], summary.get("status")))
        )
    if isinstance(summary.get("cross_validation"), Mapping):
        pairs.append((_("cross-validation"), cv_line(summary["cross_validation"])))
    if isinstance(summary.get("validation"), Mapping):
        pairs.append((_("validation estimate"), validation_line(summary["validation"])))
    final = summary.get("final") or {}
    pairs += [(metric_label(k), f"{v:.4f}") for k, v in final.items() if k not in ("epoch", "elapsed_s")]
    if summary.get("no_test_metrics"):  # a run without test rows (devicelab.fit without X_test)
        pairs.append((_("test metrics"), translate(summary["no_test_metrics"])))
    if isinstance(summary.get("baseline"), Mapping):
        pairs.append((_("linear baseline"), baseline_text(summary["baseline"])))
    return pairs


def role_rows(roles: Sequence[Mapping]) -> str:
    """The role table a file run printed: what devicelab did with each column."""
    headers = [_("column"), _("role"), _("missing"), _("what devicelab does")]
    body = [
        [
            Code(r.get("column", "")),
            role_label(r.get("role", "")),
            r.get("missing") or "",
            translate(r.get("detail", "")),
        ]
        for r in roles
    ]
    return table(headers, body, numeric_from=len(headers))  # the details wrap, left-aligned


def config_pairs(config: Mapping) -> list[tuple[str, object]]:
    hidden = ("quiet", "runs_dir", *(("dataset",) if config.get("data") else ()))  # a file run's is unused
    shown = {k: v for k, v in config.items() if v not in (None, {}, []) and k not in hidden}
    return [(Code(k), v) for k, v in shown.items()]


def render_run(folder: Path) -> str:
    summary = _read_json(folder / "summary.json")
    config_record = _read_json(folder / "config.json") or {}
    hardware = _read_json(folder / "hardware.json")
    metrics = _read_metrics(folder / "metrics.csv")
    losses = _read_losses(folder / "losses.npy")
    config = config_record.get("config", {})
    preprocessing = _read_json(folder / "preprocessing.json") or {}
    source = preprocessing.get("source") or {}
    roles = preprocessing.get("roles") or config_record.get("data_roles") or []

    page = Page(
        title=_("Training run {name}").format(name=folder.resolve().name),
        subtitle=_("{dataset}, MLP hidden {hidden}, {optimizer} lr {lr}").format(
            dataset=Path(config["data"]).name if config.get("data") else config.get("dataset", "?"),
            hidden=",".join(str(h) for h in config.get("hidden", [])),
            optimizer=config.get("optimizer", "?"),
            lr=config.get("lr", "?"),
        ),
        banner=run_banner(summary, folder),
    )
    if summary:
        page.add(_("Summary"), kv_table(run_summary_pairs(summary, folder, source)))
    if roles and source.get("kind") != "builtin":
        page.add(_("Columns"), role_rows(roles))
    page.add(_("Loss"), _loss_chart(losses, metrics))
    page.add(_("Metrics"), _metrics_charts(metrics))
    if metrics:
        page.add(_("Log points"), _log_table(metrics))
    page.add(_("Configuration"), kv_table(config_pairs(config)))
    versions = config_record.get("versions") or {}
    page.add(_("Versions"), kv_table(list(versions.items())))
    if hardware:
        page.add(_("Hardware"), kv_table(hardware_summary(hardware)))
    if summary and (summary.get("device_choice") or {}).get("reason"):
        page.add(_("Device choice"), f"<p>{escape(translate(summary['device_choice']['reason']))}</p>")
    return render_page(page)


def _loss_chart(losses, metrics: Sequence[Mapping]) -> str:
    series = []
    if losses is not None and len(losses):
        done = [(i + 1, float(v)) for i, v in enumerate(losses) if v == v]  # NaN: epochs never run
        x, y = downsample([d[0] for d in done], [d[1] for d in done])
        series.append(Series(_("train loss (every epoch)"), x, y))
    for key, name in (
        ("val_loss", _("validation loss (log points)")),
        ("test_loss", _("test loss (log points)")),
    ):
        points = [(m["epoch"], m[key]) for m in metrics if key in m]
        if points:
            series.append(Series(name, [p[0] for p in points], [p[1] for p in points], True))
    if not series:
        return ""
    values = [v for s in series for v in s.y]
    log_y = min(values) > 0 and max(values) / min(values) > 10  # a curve that spans decades
    return figure(line_chart(series, x_label=_("epoch"), y_label=_("loss"), log_y=log_y, title=_("Loss")))


def _metrics_charts(metrics: Sequence[Mapping]) -> str:
    """One chart per kind of metric (accuracy, RMSE, R²: their scales differ), validation and test on it."""
    keys = [
        k
        for k in (metrics[0] if metrics else {})
        if k.startswith(("val_", "test_")) and not k.endswith("_loss")
    ]
    kinds = dict.fromkeys(k.split("_", 1)[1] for k in keys)
    charts = []
    for kind in kinds:
        series = [
            Series(
                metric_label(k),
                [m["epoch"] for m in metrics if k in m],
                [m[k] for m in metrics if k in m],
                True,
            )
            for k in (f"val_{kind}", f"test_{kind}")
            if k in keys
        ]
        label = _(METRIC_KINDS.get(kind, kind))
        charts.append(figure(line_chart(series, x_label=_("epoch"), y_label=label, title=label)))
    return "".join(charts)


def _log_table(metrics: Sequence[Mapping], limit: int = 40) -> str:
    """At most ``limit`` log points, evenly spaced, always the first and the last."""
    rows = list(metrics)
    if len(rows) > limit:
        picks = sorted({round(i * (len(rows) - 1) / (limit - 1)) for i in range(limit)})
        rows = [rows[i] for i in picks]
    keys = list(metrics[0])
    headers = [
        _("epoch") if k == "epoch" else _("elapsed s") if k == "elapsed_s" else metric_label(k) for k in keys
    ]
    body = [[int(r["epoch"]) if k == "epoch" else r.get(k) for k in keys] for r in rows]
    note = (
        f"<p class='sub'>{escape(_('{shown} of {total} log points shown; all are in metrics.csv.').format(shown=len(rows), total=len(metrics)))}</p>"
        if len(rows) < len(metrics)
        else ""
    )
    return table(headers, body) + note
