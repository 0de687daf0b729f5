"""The sweep's progress line on stderr, written at log points only (no host syncs of its own): redrawn
in place on a terminal, at most every few seconds into a file or pipe, and always at a group's end."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from devicelab.report.progress import SHORT, _duration


class SweepProgress:
    def __init__(self, stream: TextIO | None = None, every_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s, self.last_written, self.width = every_s, float("-inf"), 0

    def start(self, n_models: int, n_groups: int, epochs: int, n_train: int) -> None:
        shapes = f"{n_groups} shape{'s' * (n_groups != 1)}"
        self.stream.write(
            f"sweeping {n_models} model{'s' * (n_models != 1)} ({shapes}) for {epochs} epochs on {n_train} rows\n"
        )
        self.stream.flush()

    def __call__(self, point) -> None:
        last = point.epoch == point.total_epochs
        line = (
            f"[shape {point.group + 1}/{point.n_groups}: {'-'.join(map(str, point.hidden))}] "
            f"epoch {point.epoch}/{point.total_epochs}  median loss {point.median_loss:.4f}  "
            f"best {SHORT.get(point.metric, point.metric)} {point.best_metric:.4f}  "
            f"elapsed {_duration(point.elapsed_s)}  ETA {_duration(point.eta_s)}"
        )
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width) + ("\n" if last else ""))
            self.width = len(line)
        elif last or time.monotonic() - self.last_written >= self.every_s:
            self.stream.write(line + "\n")
            self.last_written = time.monotonic()
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.width:
            self.stream.write("\n")
            self.width = 0
