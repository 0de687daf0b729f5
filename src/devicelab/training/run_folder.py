"""Writing a run folder: every file atomically, the folder never reused.

``summary.json`` is written last, so a folder that has one is complete. Contents:
config.json, preprocessing.json, hardware.json, model.safetensors, state.safetensors (optimizer and
RNG state, for --resume), losses.npy, metrics.csv, loss.png, summary.json. A run with autosave (the CLI's
default) makes its folder at the start, with config, preprocessing and hardware, and keeps ``last.ckpt``
there until the folder is complete, so a killed run can be resumed from its last log point.
"""

from __future__ import annotations

import csv
import io
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from devicelab import __version__
from devicelab.fsutil import atomic_write, atomic_write_json, atomic_write_text, new_run_dir
from devicelab.training.checkpoint import optimizer_tensors, save_model, save_tensors
from devicelab.training.evaluate import NO_TEST_ROWS
from devicelab.training.units import in_units

if TYPE_CHECKING:  # for annotations only: result.py imports this module (inside RunResult.save)
    from torch import nn

    from devicelab.data import Dataset
    from devicelab.training.config import TrainConfig
    from devicelab.training.result import RunResult

CONFIG, PREPROCESSING, HARDWARE, SUMMARY = (
    "config.json",
    "preprocessing.json",
    "hardware.json",
    "summary.json",
)
LAST = "last.ckpt"  # a killed run's last checkpoint (training/autosave.py); gone once the folder is complete
MODEL, STATE, LOSSES, METRICS, PLOT = (
    "model.safetensors",
    "state.safetensors",
    "losses.npy",
    "metrics.csv",
    "loss.png",
)


def write_run(result: RunResult, runs_dir: str | Path, name: str | None, folder: Path | None = None) -> Path:
    """Write every file of the run; into ``folder`` when it was made at the start of the run (``Autosave``),
    else into a new folder under ``runs_dir``. The last checkpoint, if any, goes once the folder is whole."""
    folder = folder or new_run_dir(runs_dir, name)
    copy_model_source(result.config, folder)
    save_model(folder / MODEL, result.model)
    tensors, metadata = optimizer_tensors(result.optimizer_state)
    tensors.update({f"rng/{k}": v for k, v in result.rng_state.items()})
    tensors.update(result.extra_state)  # early stopping's best weights; the last epoch's when those differ
    save_tensors(folder / STATE, tensors, metadata)
    atomic_write_json(folder / PREPROCESSING, preprocessing_record(result))
    atomic_write_json(folder / CONFIG, config_record(result))
    atomic_write_json(folder / HARDWARE, hardware_record())
    atomic_write(folder / LOSSES, lambda tmp: _save_npy(tmp, result.losses))
    atomic_write_text(folder / METRICS, metrics_csv(result.metrics))
    atomic_write(folder / PLOT, lambda tmp: _save_png(tmp, result))
    atomic_write_json(folder / SUMMARY, summary_record(result))
    (folder / LAST).unlink(missing_ok=True)  # the complete folder supersedes it
    return folder


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append ".npy" to the temporary name
        np.save(f, array)


def _save_png(path: Path, result: RunResult) -> None:
    result.plot().savefig(path, format="png", dpi=110)  # a pyplot-free Figure: rendered by Agg


def preprocessing_record(result: RunResult) -> dict:
    return preprocessing_of(result.dataset, result.model, result.config)


def preprocessing_of(data: Dataset, model: nn.Module, config: TrainConfig | None = None) -> dict:
    """What predict needs to turn raw rows into model inputs and outputs back into labels. A user's own
    module (``config.extra["model"]``) is saved as where its class came from: ``{"user_model": ...}``."""
    source = (config.extra if config else {}).get("model")
    return {
        "task": data.task,
        "feature_names": list(data.feature_names),
        "target": data.target_name,
        "classes": list(data.classes) if data.classes is not None else None,
        "scaler": data.scaler.to_dict(),
        "target_scaler": data.target_scaler.to_dict() if data.target_scaler else None,
        "model_spec": {"user_model": source} if source else getattr(model, "spec", {}),
        "source": data.source,
        "roles": [role.to_dict() for role in data.roles],
        "preprocessing": data.preprocessor.to_dict() if data.preprocessor else None,
        "na_values": list(data.source.get("na_values", ())),  # cells that were missing in the target
        "input_dtype": str(data.x_train.dtype),  # a user's module: float64, or integer codes (user_inputs.py)
    }


def copy_model_source(config: TrainConfig, folder: Path) -> None:
    """A user's module: a copy of its source file in the run folder (``model_source.py``)."""
    if config.extra.get("model"):
        from devicelab.training.user_model import copy_source

        copy_source(config.extra["model"], folder)


def config_record(result: RunResult) -> dict:
    return config_of(result.config, result.dataset, result.resumed_from)


def config_of(config: TrainConfig, dataset: Dataset, resumed_from: str | None) -> dict:
    from importlib.metadata import version  # scikit-learn's version without importing it (~1 s)

    import torch

    return {
        "config": config.to_dict(),
        "data_roles": [role.to_dict() for role in dataset.roles],
        "resumed_from": resumed_from,
        "versions": {
            "devicelab": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scikit-learn": version("scikit-learn"),
            "python": platform.python_version(),
        },
    }


def hardware_record() -> dict:
    """devicelab.hardware's record when that module is there, else a minimal one of our own."""
    try:
        from devicelab.hardware import collect
        from devicelab.hardware.report import to_dict
    except ImportError:
        return _minimal_hardware()
    try:
        return to_dict(collect())
    except Exception as error:  # a failing probe must not cost the user their trained run
        return {**_minimal_hardware(), "collect_error": f"{type(error).__name__}: {error}"}


def _minimal_hardware() -> dict:
    import os

    import torch

    return {
        "source": "devicelab.training (minimal record)",
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }


def metrics_csv(rows: tuple[dict, ...]) -> str:
    if not rows:
        return "epoch,train_loss\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def summary_record(result: RunResult) -> dict:
    return {
        "status": result.status,
        "resumable": result.resumable,
        "epochs_done": result.epochs_done,
        "epochs_total": result.config.epochs,
        "diverged_epoch": result.diverged_epoch,
        "dataset": result.dataset.name,
        "task": result.dataset.task,
        "rows": {
            "train": len(result.dataset.x_train),
            "test": len(result.dataset.x_test),
            "val": len(result.dataset.x_val),
            "dropped": result.dataset.source.get("rows_dropped", 0),
        },
        "device": result.choice.device,
        "threads": result.choice.threads,
        "device_choice": result.choice.to_dict(),
        "wall_s": result.wall_s,
        "total_wall_s": result.previous_wall_s + result.wall_s,
        "session_epochs": result.session_epochs,
        "us_per_epoch": result.us_per_epoch,
        "step": {
            "path": result.path,
            "reason": result.path_reason,
            "setup_s": result.setup_s,
            "self_check": result.self_check,
            "fallback": result.fallback or None,
        },
        "early_stopping": result.early_stopping,
        "checkpoints": result.checkpoints,
        "data": {"mode": result.data_mode, "reason": result.data_reason},
        "distributed": {"world_size": result.world_size},
        "host_syncs": result.host_syncs,
        "no_test_metrics": None if len(result.dataset.x_test) else NO_TEST_ROWS,
        "final": result.final,  # as metrics.csv has it (a regression's losses on the encoded target)
        "final_in_target_units": in_units(result.final, result.dataset.task, result.dataset.target_scaler),
        "baseline": result.baseline,
        "cross_validation": result.cross_validation,
        "validation": result.validation,
        "resumed_from": result.resumed_from,
    }
