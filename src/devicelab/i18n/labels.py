"""Words shared by the terminal and the HTML report: run statuses and metric names, in the current language."""

from __future__ import annotations

from devicelab.i18n import N_, _, ngettext

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

WORDS = {  # a metric's name alone (predict's score on a file, what a sweep ranks by)
    "accuracy": N_("accuracy"),
    "loss": N_("loss"),
    "rmse": N_("rmse"),
    "r2": N_("r2"),
}

ROLES = {  # the role column of the role table
    "numeric": N_("numeric"),
    "categorical": N_("categorical"),
    "target": N_("target"),
    "dropped": N_("dropped"),
}


def role_label(role: str) -> str:
    return _(ROLES[role]) if role in ROLES else role


def status_text(status: str) -> str:
    return _(STATUSES[status]) if status in STATUSES else status.replace("_", " ")


def metric_label(key: str) -> str:
    return _(METRICS[key]) if key in METRICS else key.replace("_", " ")


def metric_word(name: str) -> str:
    """``accuracy``, ``rmse``, ... (a metric without its split) in the current language."""
    return _(WORDS[name]) if name in WORDS else name.replace("_", " ")


def device_label(device: str, threads: int) -> str:
    """``cpu (1 thread)``; an accelerator without a thread count (its host threads are not the point)."""
    if device != "cpu":
        return device
    return ngettext("{device} ({threads} thread)", "{device} ({threads} threads)", threads).format(
        device=device, threads=threads
    )
