"""The loss plot of a run: training loss every epoch, validation and test loss at log points, and the test
score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCORE = {"test_accuracy": "test accuracy", "test_r2": "test R²"}


def loss_figure(losses: np.ndarray, metrics: Sequence[dict], title: str = ""):
    """A two-panel matplotlib Figure: the loss curves on a log scale and the test score over epochs.

    Made without pyplot, so no window opens and no global backend is changed; ``savefig`` renders it
    with Agg."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, score_axes = figure.subplots(1, 2)
    epochs = np.arange(1, len(losses) + 1)
    loss_axes.plot(epochs, losses, color="tab:blue", linewidth=1, label="train loss (every epoch)")
    logged = [row["epoch"] for row in metrics]
    if metrics and "test_loss" in metrics[0]:  # a run without test rows has none
        loss_axes.plot(
            logged,
            [row["test_loss"] for row in metrics],
            "o-",
            color="tab:orange",
            markersize=2,
            linewidth=1,
            label="test loss (log points)",
        )
    if metrics and "val_loss" in metrics[0]:
        loss_axes.plot(
            logged,
            [row["val_loss"] for row in metrics],
            "s-",
            color="tab:purple",
            markersize=2,
            linewidth=1,
            label="validation loss (log points)",
        )
    positive = losses[np.isfinite(losses) & (losses > 0)]
    if positive.size:
        loss_axes.set_yscale("log")
    loss_axes.set(xlabel="epoch", ylabel="loss", title="loss")
    loss_axes.grid(True, which="both", alpha=0.3)
    loss_axes.legend()
    score = next((key for key in SCORE if metrics and key in metrics[0]), None)
    if score:
        values = [row[score] for row in metrics]
        score_axes.plot(logged, values, "o-", color="tab:green", markersize=2, linewidth=1)
        score_axes.set(xlabel="epoch", ylabel=SCORE[score], title=f"{SCORE[score]} (final {values[-1]:.3f})")
        score_axes.grid(True, alpha=0.3)
    else:
        score_axes.set_axis_off()
    if title:
        figure.suptitle(title)
    return figure
