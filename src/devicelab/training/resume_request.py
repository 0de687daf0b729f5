"""What a resumed command asks, and the one decision whether it may: a ``ResumeRequest`` (the folder,
the epochs, and every option the user gave) becomes the config to continue with and the checkpoint to
continue from, or a UserError that names the options a run fixed and the values it keeps.

The command line only turns its arguments into a request; this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devicelab.errors import UserError
from devicelab.training.config import TrainConfig
from devicelab.training.resume import Checkpoint, load_checkpoint


@dataclass(frozen=True)
class ResumeRequest:
    folder: str | Path
    epochs: int | None = None  # the new total (None: the run's own)
    data: str | None = None  # where the run's CSV is now, if it moved (its contents must be the same)
    dataset: str | None = None  # a built-in set named again (must be the run's)
    # options the user gave that the run fixed, by config field: {"lr": ("--lr", 0.1)}
    fixed: dict[str, tuple[str, Any]] = field(default_factory=dict)
    # how to run it (not what it is): device (None: as before), fast, threads, log_every, quiet, ...
    running: dict[str, Any] = field(default_factory=dict)


def resume_run(request: ResumeRequest) -> tuple[TrainConfig, Checkpoint]:
    """The config to continue with and the checkpoint to continue from; a UserError when the request
    names other data or changes something the run fixed (its own values, as a restarted torchrun job
    repeats them, are fine)."""
    checkpoint = load_checkpoint(request.folder)
    _check_same_data(request, checkpoint)
    _check_nothing_fixed_is_changed(request, checkpoint)
    folder = Path(request.folder).resolve()
    running = {
        "runs_dir": str(folder.parent),
        "name": f"{folder.name}-resumed",
        **{k: v for k, v in request.running.items() if v is not None},
    }
    return checkpoint.config_for(request.epochs, data=request.data, **running), checkpoint


def _check_nothing_fixed_is_changed(request: ResumeRequest, checkpoint: Checkpoint) -> None:
    saved = checkpoint.config.to_dict()
    changed = [
        (name, option)
        for name, (option, value) in request.fixed.items()
        if _listed(value) != _listed(saved.get(name))
    ]
    if changed:
        kept = ", ".join(f"{option} {_show(saved.get(name))}" for name, option in changed)
        raise UserError(
            f"{', '.join(o for _, o in changed)} cannot change when resuming run {checkpoint.run_dir} "
            f"(it keeps {kept})",
            hint="leave them out to continue the run as it was, or start a new run with the new values",
        )


def _check_same_data(request: ResumeRequest, checkpoint: Checkpoint) -> None:
    """A data set named with the request must be the run's kind of data (a CSV given for a CSV run may
    live at another path: its contents are compared once it is read); a CSV run's file must exist."""
    saved = checkpoint.config
    saved_path = checkpoint.preprocessing.get("source", {}).get("path")
    asked_csv = request.data is not None and saved_path is None
    asked_set = request.dataset is not None and (saved.data is not None or request.dataset != saved.dataset)
    if asked_csv or asked_set:
        trained_on = saved.data or saved.dataset
        raise UserError(
            f"run {checkpoint.run_dir} was trained on {trained_on}, not {request.data or request.dataset}",
            hint="resume with the run's own data (or leave --data/--dataset out), or start a new run",
        )
    if saved_path and request.data is None and not Path(saved_path).is_file():
        raise UserError(
            f"run {checkpoint.run_dir} was trained on {saved_path}, which is no longer there",
            hint="pass --data with the file's new path; its contents must be the same",
        )


def _listed(value):
    return list(value) if isinstance(value, tuple | list) else value


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
