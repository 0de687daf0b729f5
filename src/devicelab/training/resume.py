"""Reading a run folder back to continue it: weights, optimizer state, RNG state, losses and metrics.

On the CPU a resumed run's loss history equals an uninterrupted run's, because everything random
(dropout, the mini-batch shuffle) and everything the optimizer carries is saved and restored.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from devicelab.data import Dataset
from devicelab.devices import resolve_device
from devicelab.errors import UserError
from devicelab.training.checkpoint import build_checked_model, load_model, load_tensors, optimizer_state
from devicelab.training.config import TrainConfig
from devicelab.training.device_choice import Candidate, DeviceChoice
from devicelab.training.run_folder import CONFIG, LAST, LOSSES, METRICS, MODEL, PREPROCESSING, STATE, SUMMARY
from devicelab.training.workload import Workload


@dataclass(frozen=True)
class Checkpoint:
    run_dir: Path
    config: TrainConfig
    summary: dict
    preprocessing: dict
    losses: np.ndarray
    metrics: tuple[dict, ...]
    weights: dict[str, torch.Tensor]
    optimizer: dict
    rng: dict[str, torch.Tensor]
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # early/... and resume/... (run_folder.py)

    @property
    def early_stopping(self) -> dict | None:
        """The early-stopping state to continue from (best point, log points since), if the run had it."""
        return self.summary.get("early_stopping")

    @property
    def epochs_done(self) -> int:
        return int(self.summary["epochs_done"])

    @property
    def wall_s(self) -> float:
        return float(self.summary.get("total_wall_s", 0.0))

    def config_for(self, epochs: int | None, data: str | None = None, **running) -> TrainConfig:
        """The saved config, continued to ``epochs`` in total (default: its own total); ``data``: where
        the run's CSV is now, if it moved."""
        total = epochs if epochs is not None else self.config.epochs
        if total <= self.epochs_done:
            raise UserError(
                f"run {self.run_dir} already has {self.epochs_done} epochs",
                hint=f"pass --epochs N with a total larger than {self.epochs_done} to train further",
            )
        source = self.preprocessing.get("source", {})
        if data is None:  # the saved path is absolute: any cwd works
            data = source["path"] if source.get("kind") == "csv" else self.config.data
        changes = {k: v for k, v in running.items() if v is not None}
        return replace(self.config, epochs=total, data=data, **changes)

    def check_dataset(self, dataset: Dataset) -> None:
        """A UserError when ``dataset`` is not the data this run was trained on."""
        saved = self.preprocessing
        same_source = _source_key(saved.get("source", {})) == _source_key(dataset.source)
        same_columns = list(dataset.feature_names) == saved["feature_names"]
        classes = list(dataset.classes) if dataset.classes is not None else None
        # a built-in set's run saved before its classes had names kept the ids 0, 1, 2...
        ids = list(range(len(classes))) if classes and dataset.source.get("kind") == "builtin" else None
        same_classes = saved["classes"] == classes or (ids is not None and saved["classes"] == ids)
        if not (same_source and same_columns and same_classes):
            raise UserError(
                f"run {self.run_dir} was trained on other data ({_describe(saved.get('source', {}))}), "
                f"not {_describe(dataset.source)}",
                hint="resume with the data the run was trained on, or start a new run",
            )

    def device_choice(self, config: TrainConfig) -> DeviceChoice:
        """The device the run used (so the losses continue exactly), unless ``config`` names another."""
        asked = config.device != "auto"
        device = resolve_device(config.device if asked else self.summary["device"])
        threads = config.threads or int(self.summary.get("threads") or torch.get_num_threads())
        why = "asked for" if asked else "as before the resume"
        only = Candidate(str(device), threads, None)
        return DeviceChoice(str(device), threads, f"{only.label}: {why}", (only,))

    def restore(self, work: Workload) -> int:
        """Load weights, optimizer and RNG state into ``work``; returns the epochs already done."""
        last = {k.split("/", 1)[1]: v for k, v in self.extra.items() if k.startswith("resume/")}
        # the last epoch's weights, where early stopping saved the best ones as the model
        work.model.load_state_dict(last or self.weights)
        if work.optimizer is not None:
            work.optimizer.load_state_dict(self.optimizer)
        torch.set_rng_state(self.rng["cpu"])
        same_type = work.device.type == torch.device(self.summary["device"]).type
        if same_type:  # a generator's state only fits a generator of its own device type
            work.generator.set_state(self.rng["shuffle"])
            if "cuda" in self.rng:
                torch.cuda.set_rng_state(self.rng["cuda"], work.device)
        work.losses[: self.epochs_done] = torch.from_numpy(self.losses).to(work.device)
        return self.epochs_done


def load_checkpoint(run_dir: str | Path) -> Checkpoint:
    """Read a run folder for --resume (a complete one, or a killed run's ``last.ckpt``); a UserError says
    what is missing, damaged or unusable."""
    folder = check_run_folder(run_dir)
    if not (folder / SUMMARY).exists() and (folder / LAST).exists():
        return _from_last_checkpoint(folder)
    if not (folder / SUMMARY).exists() and (folder / CONFIG).exists():
        raise UserError(
            f"run {folder} was stopped before its first checkpoint: there is nothing to resume",
            hint="start a new run (checkpoints are written at log points, see --checkpoint-every)",
        )
    summary = read_json(folder / SUMMARY, "run summary")
    if not summary.get("resumable", False):
        raise UserError(
            f"run {folder} stopped with status {summary.get('status')!r} and cannot be resumed",
            hint="start a new run (after a NaN loss: with a lower --lr)",
        )
    config, preprocessing = _start_files(folder)
    _require(folder / SUMMARY, summary, "epochs_done", "device", "threads")
    model = load_model(folder / MODEL, preprocessing["model_spec"])
    state, metadata = load_tensors(folder / STATE, "optimizer state file")
    _require(folder / STATE, {**state, **metadata}, "rng/cpu", "rng/shuffle", "param_groups")
    with damaged(folder / SUMMARY):
        epochs_done = int(summary["epochs_done"])
    losses = _read_losses(folder / LOSSES, epochs_done)
    with damaged(folder / METRICS):
        metrics = _read_metrics(folder / METRICS)
    return _checkpoint(folder, config, summary, preprocessing, losses, metrics, model, state, metadata)


def _from_last_checkpoint(folder: Path) -> Checkpoint:
    """A killed run: its start files and the last checkpoint written at a log point."""
    config, preprocessing = _start_files(folder)
    tensors, metadata = load_tensors(folder / LAST, "checkpoint")
    needed = ("losses", "summary", "metrics", "param_groups", "rng/cpu", "rng/shuffle")
    _require(folder / LAST, {**tensors, **metadata}, *needed)
    with damaged(folder / LAST):
        summary = dict(metadata["summary"])
        epochs_done = int(summary["epochs_done"])
        losses = tensors["losses"].numpy().astype(np.float32)
        if losses.shape != (epochs_done,):
            raise ValueError(f"{losses.shape[0]} losses for {epochs_done} epochs")
        metrics = tuple(_metric_row(row) for row in metadata["metrics"])
    weights = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("model/")}
    model = build_checked_model(folder / LAST, preprocessing["model_spec"], weights)
    return _checkpoint(folder, config, summary, preprocessing, losses, metrics, model, tensors, metadata)


def _start_files(folder: Path) -> tuple[TrainConfig, dict]:
    """The config and preprocessing record, written when the run started."""
    preprocessing = read_json(folder / PREPROCESSING, "preprocessing record")
    config_record = read_json(folder / CONFIG, "run config")
    _require(folder / PREPROCESSING, preprocessing, "model_spec", "feature_names", "classes")
    _require(folder / CONFIG, config_record, "config")
    with damaged(folder / CONFIG):
        config = TrainConfig.from_dict(config_record["config"])  # validated as it is built
    return config, preprocessing


def _checkpoint(
    folder, config, summary, preprocessing, losses, metrics, model, state, metadata
) -> Checkpoint:
    return Checkpoint(
        run_dir=folder,
        config=config,
        summary=summary,
        preprocessing=preprocessing,
        losses=losses,
        metrics=metrics,
        weights=model.state_dict(),
        optimizer=optimizer_state(state, metadata),
        rng={k.split("/", 1)[1]: v for k, v in state.items() if k.startswith("rng/")},
        extra={k: v for k, v in state.items() if k.startswith(("early/", "resume/"))},
    )


def _metric_row(row: dict) -> dict:
    return {k: int(v) if k == "epoch" else float(v) for k, v in row.items()}


def check_run_folder(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path; a UserError when it is missing or not a folder."""
    folder = Path(run_dir)
    if not folder.exists():
        raise UserError(f"run folder {folder} does not exist", hint="give the path of a folder under runs/")
    if not folder.is_dir():
        raise UserError(f"{folder} is a file, not a run folder", hint="give the path of a folder under runs/")
    if (folder / "results.csv").is_file() and (folder / "best").is_dir():
        raise UserError(
            f"{folder} is a sweep folder, not a run folder",
            hint=f"its best model is the run folder {folder / 'best'}",
        )
    return folder


@contextmanager
def damaged(path: Path) -> Iterator[None]:
    """Turns a value of the wrong type or shape in a run folder's file into a UserError naming it."""
    try:
        yield
    except UserError:  # (a ValueError too) already says what is wrong
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise UserError(
            f"{path} holds a value devicelab cannot use ({type(error).__name__}: {str(error)[:80]}): "
            "the run folder is damaged or from another version",
            hint="use another run or train again",
        ) from None


def _require(path: Path, record: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in record]
    if missing:
        raise UserError(
            f"{path} lacks {', '.join(missing)}: the run folder is damaged or from another program",
            hint="use another run or train again",
        )


def read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise UserError(
            f"{path.parent} is not a complete devicelab run folder ({path.name} is missing)",
            hint="give a folder written by devicelab train",
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(
            f"{what} {path} is corrupt ({error})", hint="use another run or train again"
        ) from None
    if not isinstance(record, dict):
        raise UserError(
            f"{what} {path} is corrupt (a JSON {type(record).__name__}, not an object)",
            hint="use another run or train again",
        )
    return record


def _read_losses(path: Path, expected: int) -> np.ndarray:
    try:
        losses = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UserError(f"loss history {path} is unreadable ({error})", hint="use another run") from None
    if losses.shape != (expected,):
        raise UserError(f"loss history {path} has {losses.shape} values, expected ({expected},)")
    return losses.astype(np.float32)


def _read_metrics(path: Path) -> tuple[dict, ...]:
    if not path.is_file():
        return ()
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return tuple(_metric_row(row) for row in rows)


def _source_key(source: dict) -> tuple:
    return (source.get("kind"), source.get("name"), source.get("sha256"))


def _describe(source: dict) -> str:
    if source.get("kind") == "csv":
        return f"{source.get('path')} with sha256 {str(source.get('sha256'))[:12]}"
    return f"built-in {source.get('name')!r}"
