"""The training progress bar: elapsed, ETA and latest loss, redrawn at log points only (never per
step, so it costs no host syncs). On a terminal one line is redrawn; into a file or pipe a line is
written at most every few seconds, plus the first and the last."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from devicelab.i18n import N_, _, translate
from devicelab.report.tables import display_width
from devicelab.training.callbacks import Callbacks, LogPoint, StartInfo

SHORT = {
    "val_loss": N_("val loss"),
    "val_accuracy": N_("val accuracy"),  # a sweep's ranking metric when there are validation rows
    "test_loss": N_("test loss"),
    "test_accuracy": N_("test acc"),
    "test_rmse": N_("test rmse"),
    "test_r2": N_("test R²"),
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
    scores = "  ".join(f"{_(SHORT[k]) if k in SHORT else k} {v:.4f}" for k, v in point.metrics.items())
    counts = _("{done:4.0%} epoch {epoch}/{total}  loss {loss:.4f}").format(
        done=done, epoch=point.epoch, total=point.total_epochs, loss=point.train_loss
    )
    eta = _("ETA {eta}").format(eta=_duration(point.eta_s))
    elapsed = _("elapsed {elapsed}").format(elapsed=_duration(point.elapsed_s))
    line = f"[{bar}] {counts}  {scores}  {elapsed}  {eta}"
    if columns is None or display_width(line) < columns:
        return line
    return f"{counts}  {eta}  {scores}"[: max(columns - 1, 1)]


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
        if info.n_val:
            split = _("{val} for validation, {test} for testing").format(val=info.n_val, test=info.n_test)
        else:
            split = _("{test} for testing").format(test=info.n_test)
        if info.start_epoch:
            head = _("training {epochs} epochs (resuming after epoch {start}) on {rows} rows ({split})")
        else:
            head = _("training {epochs} epochs on {rows} rows ({split})")
        head = head.format(epochs=info.total_epochs, start=info.start_epoch, rows=info.n_train, split=split)
        device = _("device: {reason}").format(reason=translate(info.device_reason))
        step = _("step: {reason}").format(reason=translate(info.path_reason))
        self.stream.write(f"{head}\n{device}\n{step}\n")
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

    def on_fallback(self, reason: str) -> None:
        """A fast path failed and the run goes on eagerly: one line of its own, said once."""
        self.stream.write(
            ("\n" if self.tty else "") + _("devicelab: {reason}").format(reason=translate(reason)) + "\n"
        )
        self.width = 0
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
