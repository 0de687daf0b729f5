"""sweep.png: every model's training loss coloured by its learning rate (one line style per hidden
shape), and a summary panel: the test metric against the learning rate, per shape, median over seeds
with the spread (min to max) shaded."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

STYLES = ("-", "--", ":", "-.")
STYLE_NAMES = {"-": "solid", "--": "dashed", ":": "dotted", "-.": "dash-dot"}


def sweep_figure(result) -> Figure:
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    curves, summary = fig.subplots(1, 2, width_ratios=(3, 2))
    lrs = np.array(result.grid.lrs)
    norm = LogNorm(lrs.min(), lrs.max() if lrs.max() > lrs.min() else lrs.min() * 10)
    cmap = colormaps["viridis"]
    for g, group in enumerate(result.groups):
        done = group.epochs_done
        x = np.arange(1, done + 1)
        step = max(1, done // 2000)  # at most ~2000 points a curve
        for i, spec in enumerate(group.specs):
            curves.plot(x[::step], group.losses[i, :done:step], color=cmap(norm(spec.lr)),
                        linestyle=STYLES[g % len(STYLES)], linewidth=0.7, alpha=0.5)  # fmt: skip
    curves.set_yscale("log")
    curves.set_xlabel("epoch")
    curves.set_ylabel("training loss")
    names = ["-".join(map(str, h)) for h in result.grid.hiddens]
    if len(names) == 1:
        shapes = names[0]
    else:
        shapes = ", ".join(f"{n} {STYLE_NAMES[STYLES[g % len(STYLES)]]}" for g, n in enumerate(names))
    curves.set_title(f"{sum(len(g.specs) for g in result.groups)} models (hidden {shapes})")
    fig.colorbar(cmap_mappable(norm, cmap), ax=curves, label="learning rate")
    key = f"final_{result.metric}"
    rows = result.rows()
    for g, hidden in enumerate(result.grid.hiddens):
        name = "-".join(map(str, hidden))
        per_lr = [np.array([r[key] for r in rows if r["hidden"] == name and r["lr"] == lr]) for lr in lrs]
        if not any(v.size for v in per_lr):
            continue
        med = [np.nanmedian(v) if np.isfinite(v).any() else np.nan for v in per_lr]
        low = [np.nanmin(v) if np.isfinite(v).any() else np.nan for v in per_lr]
        high = [np.nanmax(v) if np.isfinite(v).any() else np.nan for v in per_lr]
        line = summary.plot(lrs, med, marker="o", linestyle=STYLES[g % len(STYLES)], label=f"hidden {name}")
        summary.fill_between(lrs, low, high, color=line[0].get_color(), alpha=0.2)
    summary.set_xscale("log")
    summary.set_xlabel("learning rate")
    summary.set_ylabel(key.replace("_", " ") + " (median, min–max over seeds)")
    summary.set_title(f"{len(result.grid.seeds)} seeds per point")
    summary.legend()
    fig.suptitle(f"sweep on {result.dataset.name}: {result.config.epochs} epochs, {result.config.optimizer}"
                 + ("" if result.status == "completed" else f" [{result.status}]"))  # fmt: skip
    return fig


def cmap_mappable(norm, cmap):
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=cmap)
