"""``bench logging`` plots: time per epoch vs record interval, and memory vs records (matplotlib, Agg)."""

from __future__ import annotations

import os
from pathlib import Path

from devicelab.bench.logging_experiment import CellResult, LoggingExperiment
from devicelab.fsutil import atomic_write


def _figure(n_devices: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n_devices, figsize=(6 * n_devices, 4.2), squeeze=False)
    return plt, fig, axes[0]


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path


def _series(exp: LoggingExperiment, device: str, strategy: str) -> list[CellResult]:
    return [c for c in exp.cells if c.device == device and c.strategy == strategy]


def plot_time_per_epoch(exp: LoggingExperiment, path: str | os.PathLike) -> Path:
    """µs per epoch (median, IQR bars) against the record interval; 'never' sits at the right."""
    finite = sorted(k for k in exp.grid.intervals if k is not None)
    positions = {k: i for i, k in enumerate(finite)}
    if None in exp.grid.intervals:
        positions[None] = len(finite)
    plt, fig, axes = _figure(len(exp.grid.devices))
    for ax, device in zip(axes, exp.grid.devices, strict=True):
        middle = (len(exp.grid.strategies) - 1) / 2  # spread the strategies symmetrically around each k
        for offset, strategy in enumerate(exp.grid.strategies):
            cells = sorted(_series(exp, device, strategy), key=lambda c: positions[c.interval])
            x = [positions[c.interval] + (offset - middle) * 0.06 for c in cells]
            y = [c.us_per_epoch for c in cells]
            low = [c.us_per_epoch - c.times.q1 / c.epochs * 1e6 for c in cells]
            high = [c.times.q3 / c.epochs * 1e6 - c.us_per_epoch for c in cells]
            ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, label=strategy)
        ax.set_xticks(list(positions.values()), ["never" if k is None else str(k) for k in positions])
        ax.set_xlabel("record interval k (epochs)")
        ax.set_ylabel("µs per epoch (median, IQR bars)")
        ax.set_title(f"{device} ({exp.device_names.get(device, '')})", fontsize=9)
        ax.legend()
    return _save(plt, fig, Path(path))


def plot_memory(exp: LoggingExperiment, path: str | os.PathLike) -> Path:
    """Memory growth (MB, median with IQR bars) against the number of losses recorded."""
    plt, fig, axes = _figure(len(exp.grid.devices))
    for ax, device in zip(axes, exp.grid.devices, strict=True):
        for strategy in exp.grid.strategies:
            cells = sorted(_series(exp, device, strategy), key=lambda c: c.records)
            y = [c.memory_median / 1e6 for c in cells]
            err = [c.memory_iqr / 2e6 for c in cells]
            ax.errorbar([c.records for c in cells], y, yerr=err, marker="o", capsize=3, label=strategy)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("losses recorded per run")
        ax.set_ylabel("memory growth per run, MB")
        ax.set_title(f"{device} ({exp.device_names.get(device, '')})", fontsize=9)
        ax.legend()
    return _save(plt, fig, Path(path))


def write_plots(exp: LoggingExperiment, folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    return [
        plot_time_per_epoch(exp, folder / "time_per_epoch.png"),
        plot_memory(exp, folder / "memory.png"),
    ]
