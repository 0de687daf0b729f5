"""Writing a sweep folder: every file atomically, the folder never reused, ``summary.json`` last.

results.csv (one row per model), losses.npy (models × epochs, float32, NaN for epochs not run),
sweep.png (all curves and the summary panel), config.json (the base options and the grid),
best/ (the best model as an ordinary run folder), summary.json.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from devicelab.fsutil import atomic_write, atomic_write_json, atomic_write_text, new_run_dir

RESULTS, LOSSES, PLOT, CONFIG, SUMMARY, BEST = (
    "results.csv", "losses.npy", "sweep.png", "config.json", "summary.json", "best",
)  # fmt: skip


def write_sweep(result, runs_dir: str | Path, name: str | None) -> Path:
    folder = new_run_dir(runs_dir, name)
    atomic_write_json(folder / CONFIG, config_record(result))
    atomic_write_text(folder / RESULTS, results_csv(result.rows()))
    atomic_write(folder / LOSSES, lambda tmp: _save_npy(tmp, result.losses()))
    atomic_write(folder / PLOT, lambda tmp: _save_png(tmp, result))
    best = result.best_run().save(folder, BEST) if result.groups else None
    atomic_write_json(folder / SUMMARY, summary_record(result, best))
    return folder


def results_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["model"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def config_record(result) -> dict:
    grid = result.grid
    return {
        "config": result.config.to_dict(),
        "grid": {
            "lr": list(grid.lrs),
            "seeds": list(grid.seeds),
            "hidden": [list(h) for h in grid.hiddens],
        },
        "split_seed": result.config.seed,
    }


def summary_record(result, best: Path | None) -> dict:
    ranked = result.ranked()
    return {
        "status": result.status,
        "models": len(result.grid),
        "models_trained": sum(len(g.specs) for g in result.groups),
        "epochs": result.config.epochs,
        "dataset": result.dataset.name,
        "task": result.task,
        "device": result.device,
        "threads": result.threads,
        "layout": result.layout,
        "layout_reason": result.layout_reason,
        "wall_s": result.wall_s,
        "setup_s": result.setup_s,
        "us_per_model_epoch": result.us_per_model_epoch,
        "host_syncs": sum(g.host_syncs for g in result.groups),
        "ranked_by": result.metric,
        "best": ranked[0] if ranked else None,
        "ranking": [row["model"] for row in ranked],  # the leaderboard's order, best first (the report's too)
        "best_run": str(best) if best else None,
    }


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append ".npy" to the temporary name
        np.save(f, array)


def _save_png(path: Path, result) -> None:
    from devicelab.sweep.plot import sweep_figure

    sweep_figure(result).savefig(path, format="png", dpi=110)
