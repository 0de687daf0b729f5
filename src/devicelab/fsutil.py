"""Writes that never leave a half-written file, and run folders that are never overwritten."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        # mkstemp makes the file private (0600); give it the permissions a plain open() would have
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp_path, 0o666 & ~mask)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


# the files train and sweep write in a run folder (training/, sweep/): what predict --out and report -o never replace
RUN_FILES = frozenset(
    {
        "config.json", "hardware.json", "summary.json", "preprocessing.json", "metrics.csv", "results.csv",
        "losses.npy", "loss.png", "sweep.png", "profile.png", "profile.json", "model.safetensors",
        "state.safetensors", "last.ckpt",
    }
)  # fmt: skip
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def new_run_dir(root: str | os.PathLike, name: str | None = None) -> Path:
    """Create and return a fresh folder under ``root``; an existing one is never reused.

    With no name, a timestamp is used; a name that exists gets ``-2``, ``-3``... appended.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = _SAFE_NAME.sub("-", name).strip("-") if name else time.strftime("%Y%m%d-%H%M%S")
    if not base:
        base = "run"
    candidate, n = root / base, 1
    while True:
        try:
            candidate.mkdir()  # atomic: fails if another process made it first
            return candidate
        except FileExistsError:
            n += 1
            candidate = root / f"{base}-{n}"


def check_output(
    out: str | os.PathLike, option: str, *, inputs=(), run_dir=None, suffixes: tuple[str, ...] = ()
) -> None:
    """Refuse, before anything is written, an output path that would replace what a command reads
    (``inputs``), a file devicelab wrote in the run folder it was given (``run_dir``: RUN_FILES; its
    report.html and the user's own files aside), or an existing file of another kind than ``suffixes`` (a
    report written over a CSV)."""
    from devicelab.errors import UserError

    path = Path(out)
    target = path.resolve()
    if any(target == Path(source).resolve() for source in inputs):
        raise UserError(
            f"{option} {path} is a file this command reads: writing there would replace it",
            hint=f"give {option} another file name",
        )
    if not path.is_file():
        return
    if run_dir is not None and target.parent == Path(run_dir).resolve() and path.name in RUN_FILES:
        raise UserError(
            f"{option} {path} is a file of run {run_dir}: writing there would damage the run",
            hint=f"give {option} a path outside the run folder",
        )
    if suffixes and path.suffix.lower() not in suffixes:
        raise UserError(
            f"{option} {path} exists and is not a {suffixes[0]} file: writing there would replace it",
            hint=f"give {option} a {suffixes[0]} path",
        )
