"""The printed leaderboard (top N models) and the one-screen summary of a sweep."""

from __future__ import annotations

import math
from pathlib import Path

from devicelab.i18n import _, ngettext, pgettext, translate
from devicelab.i18n.labels import device_label, metric_label, metric_word, status_text
from devicelab.report.tables import format_key_values, format_table


def leaderboard(result, top: int) -> str:
    rows = result.ranked()[:top]
    # the validation metrics (the ranking) first, the test ones beside them
    metric_names = [k for k in rows[0] if k.startswith(("final_val", "final_test"))] if rows else []
    headers = [
        _("rank"),
        pgettext("sweep", "model"),
        _("hidden"),
        "lr",
        _("seed"),
        metric_label("train_loss"),
        *(metric_label(k[6:]) for k in metric_names),
        _("best epoch"),
    ]
    table = [
        [rank, r["model"], r["hidden"], f"{r['lr']:g}", r["seed"], _num(r["final_train_loss"]),
         *(_num(r[k]) for k in metric_names), r["best_epoch"]]
        for rank, r in enumerate(rows, start=1)
    ]  # fmt: skip
    return format_table(table, headers)


def summary(result, folder: Path) -> str:
    diverged = sum(r["status"] == "diverged" for r in result.rows())
    trained = sum(len(g.specs) for g in result.groups)
    pairs = [
        (_("sweep folder"), folder),
        (_("status"), _("{status} ({done} of {total} models)").format(
            status=status_text(result.status), done=trained, total=len(result.grid))),
        (_("device"), f"{device_label(result.device, result.threads)}, {translate(result.layout_reason)}"),
        (_("wall time"), _("{seconds:.2f} s for {n} model-epochs ({us:.2f} µs per model-epoch; set-up "
                           "{setup:.1f} s)").format(seconds=result.wall_s, n=result.model_epochs,
                                                    us=result.us_per_model_epoch, setup=result.setup_s)),
        (_("host syncs"), _("{n} (one per log point, for all models)").format(
            n=sum(g.host_syncs for g in result.groups))),
        (_("best model"), folder / "best"),
        (_("ranked by"), _ranked_by(result.metric)),
    ]  # fmt: skip
    note = small_data_note(result.dataset)
    if note:
        pairs.append((_("small data"), note))
    if diverged:
        pairs.append(
            (
                _("diverged"),
                ngettext(
                    "{n} model (NaN or infinite loss; ranked last)",
                    "{n} models (NaN or infinite loss; ranked last)",
                    diverged,
                ).format(n=diverged),
            )
        )
    return format_key_values(pairs, indent="")


def small_data_note(dataset) -> str | None:
    """Why a small file's ranking is weaker than ``devicelab train``'s choice, and what to do: train
    cross-validates files below ``cv.CV_BELOW`` training rows; a sweep ranks on its one validation split
    (its models train as one stack per shape; folds would multiply them by five, not done yet)."""
    from devicelab.training.cv import CV_BELOW

    val = 0 if dataset.x_val is None else len(dataset.x_val)
    rows = len(dataset.x_train) + val
    if not val or rows >= CV_BELOW or dataset.source.get("kind") in ("builtin", "arrays"):
        return None
    if dataset.task == "classification":  # the binomial standard error at its largest (accuracy 0.5)
        return _(
            "ranked on {val} validation rows, where an accuracy has a standard error up to ±{se:.2f}; "
            "devicelab train cross-validates files below {below} training rows, a sweep does not yet: "
            "compare its top models with devicelab train"
        ).format(val=val, se=math.sqrt(0.25 / val), below=CV_BELOW)
    return _(
        "ranked on {val} validation rows only; devicelab train cross-validates files below {below} "
        "training rows, a sweep does not yet: compare its top models with devicelab train"
    ).format(val=val, below=CV_BELOW)


def _ranked_by(metric: str) -> str:
    name = metric_word(metric.split("_", 1)[1])
    if metric.startswith("val_"):
        return _("final validation {name} (the test metrics are shown beside it, not used to choose)").format(
            name=name
        )
    return _("final test {name} (there are no validation rows: a built-in set, or --val-size 0)").format(
        name=name
    )


def _num(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else "nan"
