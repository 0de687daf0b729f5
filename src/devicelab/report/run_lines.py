"""The lines a file run's summary adds about how good its result is: the linear baseline beside it, what
cross-validation chose on small data, and numbers in a target's units (large or small)."""

from __future__ import annotations


def print_cross_validation_note(config, dataset, resumed: bool) -> None:
    """Small data: one line saying that folds, not the validation rows above, will choose (training/cv.py)."""
    from devicelab.training import cv
    from devicelab.training.distributed import launched

    if cv.reason_not(config, dataset, resumed=resumed, distributed=launched()) is None:
        from devicelab.i18n import _

        rows = len(dataset.x_train) + len(dataset.x_val)
        print(
            _(
                "small data ({rows} training rows, fewer than {below}): {folds}-fold cross-validation on them "
                "chooses the epochs and the model, then one refit on all {rows}"
            ).format(rows=rows, below=cv.CV_BELOW, folds=cv.FOLDS),
            flush=True,
        )


def baseline_line(b: dict) -> str:
    """The baseline's test metric beside devicelab's, with the noise of their difference."""
    from devicelab.i18n import _, translate
    from devicelab.i18n.labels import metric_label

    text = _(
        "{model}: {metric} {theirs:.4f} vs devicelab's {ours:.4f} (difference {lead:+.4f}, noise ±{noise:.4f})"
    )
    return text.format(
        model=translate(b["model"]), metric=metric_label(b["metric"]), theirs=b["test_metric"],
        ours=b["devicelab_metric"], lead=b["lead"], noise=b["noise"],
    )  # fmt: skip


def cv_line(c: dict) -> str:
    """The folds' choice of epochs and the validation estimate at it, with its spread."""
    from devicelab.i18n import _
    from devicelab.i18n.labels import metric_label

    text = _(
        "{folds} folds of {rows} training rows chose {model} and epoch {best} (of {max}); {metric} "
        "{mean:.4f} ± {std:.4f} across the folds ({seconds:.1f} s); then one refit on all {rows} rows"
    )
    model = c["model"] if c["hidden"] else _("a linear model (no hidden layer)")
    if len(c["candidates"]) > 1:
        model += _(" (held-out loss {losses})").format(
            losses=_(" vs ").join(f"{t['name']} {t['val_loss']:.4f}" for t in c["candidates"])
        )
    return text.format(
        folds=c["folds"], rows=c["rows"], model=model, best=c["best_epoch"], max=c["max_epochs"],
        metric=metric_label(c["metric"]), mean=c["mean"], std=c["std"], seconds=c["wall_s"],
    )  # fmt: skip


def validation_line(v: dict) -> str:
    """A split run's estimate before the test rows: the kept weights' validation metric and its spread."""
    from devicelab.i18n import _
    from devicelab.i18n.labels import metric_label

    return _(
        "{metric} {value:.4f} ± {std:.4f} on {rows} validation rows (bootstrap standard error), the weights "
        "of epoch {epoch}"
    ).format(
        metric=metric_label(v["metric"]), value=v["value"], std=v["std"], rows=v["rows"], epoch=v["epoch"]
    )


def number(value: float) -> str:
    """Four decimals, or four significant digits for a loss in units that are very large or small."""
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e6 else f"{value:.4g}"
