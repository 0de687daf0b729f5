"""Restarts without a person: ``torchrun --max-restarts N`` runs the same ``devicelab train`` command again
after a rank fails, and that command continues from the last checkpoint of the attempt before.

torchrun gives every attempt of one job the same ``TORCHELASTIC_RUN_ID`` and counts the restarts in
``TORCHELASTIC_RESTART_COUNT``. Rank 0 of each attempt adds its run folder to a note under the runs directory,
keyed by the job's id, before it trains; a restarted attempt resumes the latest noted folder that holds a
checkpoint (every rank reads it, so they all load the same one). Noting before the first checkpoint leaves no
moment when a checkpoint exists that a restart would not find; an attempt that dies before its first
checkpoint leaves the one before it to continue. Nothing here imports torch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from devicelab.fsutil import atomic_write_text

NOTES = ".elastic"  # under the runs directory: one small file per torchrun job


def _job_id() -> str | None:
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", run_id) if run_id else None


def restarted() -> bool:
    """True in an attempt that torchrun started again after a failure."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0


def remember(runs_dir: str | Path, folder: Path) -> None:
    """Add ``folder`` to this torchrun job's note (rank 0, when its folder is made, before training)."""
    job = _job_id()
    if job:
        note = Path(runs_dir) / NOTES / job
        before = note.read_text(encoding="utf-8").splitlines() if note.is_file() else []
        atomic_write_text(note, "\n".join([*before, str(folder.resolve())]) + "\n")


def folder_to_continue(runs_dir: str | Path) -> Path | None:
    """In a restarted attempt, the latest earlier attempt's run folder that holds a checkpoint; else None
    (a first attempt, or none got as far as a checkpoint: start afresh)."""
    job = _job_id()
    if not (job and restarted()):
        return None
    note = Path(runs_dir) / NOTES / job
    if not note.is_file():
        return None
    for line in reversed(note.read_text(encoding="utf-8").splitlines()):
        folder = Path(line.strip())
        if line.strip() and ((folder / "last.ckpt").is_file() or (folder / "state.safetensors").is_file()):
            return folder
    return None
