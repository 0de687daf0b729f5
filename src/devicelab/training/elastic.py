"""Restarts without a person: ``torchrun --max-restarts N`` runs the same ``devicelab train`` command again
after a rank fails, and that command continues from the last checkpoint of the attempt before.

torchrun gives every attempt of one job the same ``TORCHELASTIC_RUN_ID`` and counts the restarts in
``TORCHELASTIC_RESTART_COUNT``. Rank 0 of each attempt notes its run folder under the runs directory, keyed
by the job's id; a restarted attempt reads the note and resumes that folder (every rank reads it, so they
all load the same checkpoint). Nothing here imports torch.
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
    """Note ``folder`` as this torchrun job's current run (rank 0, once its folder exists)."""
    job = _job_id()
    if job:
        atomic_write_text(Path(runs_dir) / NOTES / job, str(folder.resolve()))


def folder_to_continue(runs_dir: str | Path) -> Path | None:
    """In a restarted attempt, the previous attempt's run folder if it left a checkpoint to continue;
    else None (a first attempt, or one that failed before its first checkpoint: start afresh)."""
    job = _job_id()
    if not (job and restarted()):
        return None
    note = Path(runs_dir) / NOTES / job
    if not note.is_file():
        return None
    folder = Path(note.read_text(encoding="utf-8").strip())
    has_checkpoint = (folder / "last.ckpt").is_file() or (folder / "state.safetensors").is_file()
    return folder if has_checkpoint else None
