"""The training progress bar: elapsed, ETA and latest loss, redrawn at log points only (never per
step, so it costs no host syncs). On a terminal one line is redrawn; into a file or pipe a line is
written at most every few seconds, plus the first and the last."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from devicelab.training.callbacks import Callbacks, LogPoint, StartInfo

SHORT = {
    "test_loss": "test loss",
    "test_accuracy": "test acc",
    "test_rmse": "test rmse",
    "test_r2": "test R²",
}


def _duration(seconds: float) -> str:
    if seconds != seconds:  # NaN: not known yet
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}" if minutes else f"{seconds:.1f}s"


def format_point(point: LogPoint, width: int = 24, columns: int | None = None) -> str:
    """One progress line; when it is wider than ``columns`` (a terminal's), a short one with the
    progress, loss and ETA first, cut to fit (a redrawn line that wraps cannot be redrawn)."""
    done = point.epoch / point.total_epochs
    filled = int(done * width)
    bar = "#" * filled + "-" * (width - filled)
    scores = "  ".join(f"{SHORT.get(k, k)} {v:.4f}" for k, v in point.metrics.items())
    counts = f"{done:4.0%} epoch {point.epoch}/{point.total_epochs}  loss {point.train_loss:.4f}"
    line = f"[{bar}] {counts}  {scores}  elapsed {_duration(point.elapsed_s)}  ETA {_duration(point.eta_s)}"
    if columns is None or len(line) < columns:
        return line
    return f"{counts}  ETA {_duration(point.eta_s)}  {scores}"[: max(columns - 1, 1)]


def _columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` writes to (80 when it cannot be asked)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, OSError, ValueError):
        return 80


class ProgressBar(Callbacks):
    def __init__(self, stream: TextIO | None = None, every_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self.last_written = float("-inf")
        self.width = 0  # of the line on screen, so a shorter one can cover it
        self.unwritten: str | None = None  # into a file: the latest line, held back by the rate limit

    def on_start(self, info: StartInfo) -> None:
        resumed = f" (resuming after epoch {info.start_epoch})" if info.start_epoch else ""
        self.stream.write(
            f"training {info.total_epochs} epochs{resumed} on {info.n_train} rows ({info.n_test} for testing)\n"
            f"device: {info.device_reason}\n"
        )
        self.stream.flush()

    def on_log(self, point: LogPoint) -> None:
        last = point.epoch == point.total_epochs
        line = format_point(point, columns=_columns(self.stream) if self.tty else None)
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width) + ("\n" if last else ""))
            self.width = len(line)
        elif last or time.monotonic() - self.last_written >= self.every_s:
            self.stream.write(line + "\n")
            self.last_written = time.monotonic()
            self.unwritten = None
        else:
            self.unwritten = line
        self.stream.flush()

    def close(self) -> None:
        """End a run that stopped early (interrupted or diverged): finish the redrawn line on a terminal;
        into a file, write the last line the rate limit held back, so the log shows where it stopped."""
        if self.tty:
            self.stream.write("\n")
        elif self.unwritten is not None:
            self.stream.write(self.unwritten + "\n")
            self.unwritten = None
        self.stream.flush()
