"""Words shared by the terminal and the HTML report: run statuses and metric names, in the current language."""

from __future__ import annotations

from devicelab.i18n import N_, _

STATUSES = {
    "completed": N_("completed"),
    "interrupted": N_("interrupted"),
    "diverged": N_("diverged"),
    "early_stopped": N_("early stopped"),
}
METRICS = {  # as the terminal has always shown them: the key with spaces
    "train_loss": N_("train loss"),
    "test_loss": N_("test loss"),
    "test_accuracy": N_("test accuracy"),
    "test_rmse": N_("test rmse"),
    "test_r2": N_("test r2"),
    "val_loss": N_("val loss"),
    "val_accuracy": N_("val accuracy"),
    "val_rmse": N_("val rmse"),
    "val_r2": N_("val r2"),
}


def status_text(status: str) -> str:
    return _(STATUSES[status]) if status in STATUSES else status.replace("_", " ")


def metric_label(key: str) -> str:
    return _(METRICS[key]) if key in METRICS else key.replace("_", " ")
