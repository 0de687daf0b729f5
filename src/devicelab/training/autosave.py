"""A run that survives a kill: its folder exists from the start (config, preprocessing, hardware) and a
resumable checkpoint, ``last.ckpt``, is written atomically at log points, no more often than every
``every_s`` seconds (Lightning's ``last.ckpt``).

The checkpoint is one safetensors file (weights, optimizer and RNG state, the loss history so far, and
as metadata the log-point rows and a summary), written to a temporary name and renamed into place, so a
kill at any moment, mid-write included, leaves either the previous checkpoint or the new one. When the
run ends normally its folder is completed as usual and ``last.ckpt`` is removed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from devicelab.data import Dataset
from devicelab.fsutil import atomic_write_json
from devicelab.training.checkpoint import optimizer_tensors, save_tensors
from devicelab.training.config import TrainConfig
from devicelab.training.run_folder import (
    CONFIG,
    HARDWARE,
    LAST,
    PREPROCESSING,
    config_of,
    copy_model_source,
    hardware_record,
    preprocessing_of,
)

DEFAULT_EVERY_S = 60.0  # a time interval, so that a fast run is not slowed by its checkpoints


@dataclass
class Autosave:
    """Checkpoints of one run into ``folder`` (made by the caller, e.g. ``fsutil.new_run_dir``)."""

    folder: Path
    every_s: float = DEFAULT_EVERY_S  # 0: at every log point
    written: int = 0
    seconds: float = 0.0  # spent writing checkpoints (device-to-host copies included)
    _last_write: float = field(default_factory=time.perf_counter)

    def start(self, config: TrainConfig, dataset: Dataset, model: torch.nn.Module, resumed_from: str | None):
        """The files known before the first step: what the run is, on what data, on what machine."""
        atomic_write_json(self.folder / CONFIG, config_of(config, dataset, resumed_from))
        atomic_write_json(self.folder / PREPROCESSING, preprocessing_of(dataset, model, config))
        copy_model_source(config, self.folder)
        atomic_write_json(self.folder / HARDWARE, hardware_record())
        self._last_write = time.perf_counter()

    def due(self) -> bool:
        return time.perf_counter() - self._last_write >= self.every_s

    def save(
        self,
        *,
        model: torch.nn.Module,
        optimizer_state: dict,
        rng_state: dict[str, torch.Tensor],
        losses: np.ndarray,
        metrics: list[dict],
        summary: dict,
        extra: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Write ``last.ckpt`` now (at a log point: the host has just read the device)."""
        began = time.perf_counter()
        tensors, metadata = optimizer_tensors(optimizer_state)
        tensors.update({f"model/{k}": v for k, v in model.state_dict().items()})
        tensors.update({f"rng/{k}": v for k, v in rng_state.items()})
        tensors.update(extra or {})  # early stopping's best weights (early/...)
        tensors["losses"] = torch.from_numpy(np.ascontiguousarray(losses, dtype=np.float32))
        metadata.update({"model_spec": getattr(model, "spec", {}), "metrics": metrics, "summary": summary})
        # sync: copies the weights and optimizer state to the host; only at a log point that is due
        save_tensors(self.folder / LAST, tensors, metadata)
        self.written += 1
        self._last_write = time.perf_counter()
        self.seconds += self._last_write - began

    def to_dict(self) -> dict:
        return {"every_s": self.every_s, "written": self.written, "seconds": round(self.seconds, 4)}
