"""A run as devicelab keeps it while it trains: its folder made at the start (so that a killed run leaves
its last checkpoint there), a resumable checkpoint at log points, TensorBoard event files, a progress
bar, and every file of the folder written at the end.

``devicelab train`` and a notebook's ``devicelab.train(config, keep=Keep())`` both get this from here.
The training itself is passed in (``training.loop.train``, or a fit of the user's own module), so this
module does not know how a model is built or trained.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from devicelab.errors import UserError
from devicelab.training.autosave import DEFAULT_EVERY_S, Autosave
from devicelab.training.callbacks import CallbackList, Callbacks
from devicelab.training.config import TrainConfig
from devicelab.training.interrupt import StopFlag, stop_on_sigint
from devicelab.training.result import RunResult


@dataclass(frozen=True)
class Keep:
    """How a run is kept while it trains."""

    checkpoint_every: float = DEFAULT_EVERY_S  # seconds between checkpoints at log points (0: every one)
    tensorboard: str | None = None  # a folder for event files; "": <runs_dir>/tensorboard; None: none
    progress: bool = True  # a progress bar on stderr
    writes: bool = True  # False on the other ranks of a torchrun job: they train, rank 0 writes


# train(callbacks, stop, autosave) -> the result, nothing written (training.loop.train with its inputs)
Train = Callable[[Callbacks, StopFlag, Autosave | None], RunResult]


def keep_run(
    config: TrainConfig,
    train: Train,
    keep: Keep,
    callbacks: Callbacks | None = None,
    stop: StopFlag | None = None,
) -> RunResult:
    """Run ``train`` with the folder, checkpoints, TensorBoard and progress bar that ``keep`` asks for;
    the result carries its folder (``result.folder``, None on a rank that does not write). ``stop``: a
    flag the caller may set to stop at the next epoch boundary (Ctrl-C and SIGTERM set it too)."""
    # before training, so a run is not trained only to be lost; on every rank of a torchrun job, so that
    # they all stop alike (rank 0 says why)
    check_runs_dir(config.runs_dir)
    if not keep.writes:
        with stop_on_sigint(stop) as flag:
            return train(callbacks or Callbacks(), flag, None)
    folder = _new_folder(config)  # from the start, so that a killed run leaves its checkpoint there
    try:
        board = _tensorboard(keep.tensorboard, config, folder.name)  # named after the run folder
    except UserError:
        folder.rmdir()  # nothing is in it yet
        raise
    from devicelab.report.progress import ProgressBar

    bar = ProgressBar() if keep.progress else None
    # One scope for training and saving: a Ctrl-C (or SIGTERM) stops training at an epoch boundary, and
    # one that comes while the folder is written waits until it is complete.
    with stop_on_sigint(stop) as flag:
        from devicelab.training.elastic import remember

        # under torchrun, what a restart continues: the latest noted folder that holds a checkpoint
        remember(config.runs_dir, folder)
        autosave = Autosave(folder, every_s=keep.checkpoint_every)
        result = train(CallbackList(bar, board, callbacks), flag, autosave)
        if bar and result.status != "completed":
            bar.close()
        folder = _save(result, autosave.folder)
        if board:
            board.close(folder, result.status)
    return replace(result, folder=Path(folder), tensorboard=str(board.logdir) if board else None)


def check_runs_dir(runs_dir: str) -> None:
    """A UserError when run folders cannot be made under ``runs_dir`` (nothing is created here)."""
    path = Path(runs_dir).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        what = "is not a folder" if not existing.is_dir() else "is not writable"
        raise UserError(
            f"cannot write run folders under {runs_dir}: {existing} {what}",
            hint="pass --runs-dir DIR with a folder you can write to",
        )


def _tensorboard(where: str | None, config: TrainConfig, name: str):
    """The TensorBoard writer, or None; a UserError when tensorboard is missing."""
    if where is None:
        return None
    from devicelab.report.tensorboard import DEFAULT_DIR, TensorBoardCallbacks, run_logdir

    root = where or str(Path(config.runs_dir) / DEFAULT_DIR)
    return TensorBoardCallbacks(run_logdir(root, name), config.to_dict())


def _new_folder(config: TrainConfig) -> Path:
    from devicelab.fsutil import new_run_dir

    try:
        return new_run_dir(config.runs_dir, config.name)
    except OSError as error:
        raise UserError(
            f"could not make a run folder under {config.runs_dir}: {error.strerror or error}",
            hint="pass --runs-dir DIR with a folder you can write to",
        ) from None


def _save(result: RunResult, folder: Path) -> Path:
    from devicelab.training.run_folder import write_run

    try:
        return write_run(result, result.config.runs_dir, result.config.name, folder=folder)
    except OSError as error:  # a full disk, a folder removed meanwhile: say so, without a traceback
        raise UserError(
            f"could not write the run folder under {result.config.runs_dir}: "
            f"{error.strerror or error} ({error.filename})",
            hint="free some space or pass --runs-dir DIR with a writable folder, then train again",
        ) from None
