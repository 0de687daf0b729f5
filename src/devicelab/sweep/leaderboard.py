"""The printed leaderboard (top N models) and the one-screen summary of a sweep."""

from __future__ import annotations

import math
from pathlib import Path

from devicelab.i18n.labels import device_label
from devicelab.report.tables import format_key_values, format_table


def leaderboard(result, top: int) -> str:
    rows = result.ranked()[:top]
    # the validation metrics (the ranking) first, the test ones beside them
    metric_names = [k for k in rows[0] if k.startswith(("final_val", "final_test"))] if rows else []
    headers = [
        "rank",
        "model",
        "hidden",
        "lr",
        "seed",
        "train loss",
        *(k[6:].replace("_", " ") for k in metric_names),
        "best epoch",
    ]
    table = [
        [rank, r["model"], r["hidden"], f"{r['lr']:g}", r["seed"], _num(r["final_train_loss"]),
         *(_num(r[k]) for k in metric_names), r["best_epoch"]]
        for rank, r in enumerate(rows, start=1)
    ]  # fmt: skip
    return format_table(table, headers)


def summary(result, folder: Path) -> str:
    diverged = sum(r["status"] == "diverged" for r in result.rows())
    pairs = [
        ("sweep folder", folder),
        ("status", f"{result.status} ({sum(len(g.specs) for g in result.groups)} of {len(result.grid)} models)"),
        ("device", f"{device_label(result.device, result.threads)}, {result.layout_reason}"),
        ("wall time", f"{result.wall_s:.2f} s for {result.model_epochs} model-epochs "
                      f"({result.us_per_model_epoch:.2f} µs per model-epoch; set-up {result.setup_s:.1f} s)"),
        ("host syncs", f"{sum(g.host_syncs for g in result.groups)} (one per log point, for all models)"),
        ("best model", folder / "best"),
        ("ranked by", _ranked_by(result.metric)),
    ]  # fmt: skip
    if diverged:
        pairs.append(
            ("diverged", f"{diverged} model{'s' * (diverged != 1)} (NaN or infinite loss; ranked last)")
        )
    return format_key_values(pairs, indent="")


def _ranked_by(metric: str) -> str:
    name = metric.split("_", 1)[1]
    if metric.startswith("val_"):
        return f"final validation {name} (the test metrics are shown beside it, not used to choose)"
    return f"final test {name} (there are no validation rows: a built-in set, or --val-size 0)"


def _num(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "nan"
