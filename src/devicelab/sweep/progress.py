"""The sweep's progress line on stderr, written at log points only (no host syncs of its own): redrawn
in place on a terminal, at most every few seconds into a file or pipe, and always at a group's end."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from devicelab.i18n import _, ngettext
from devicelab.report.progress import SHORT, _duration


class SweepProgress:
    def __init__(self, stream: TextIO | None = None, every_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s, self.last_written, self.width = every_s, float("-inf"), 0

    def start(self, n_models: int, n_groups: int, epochs: int, n_train: int) -> None:
        shapes = ngettext("{n} shape", "{n} shapes", n_groups).format(n=n_groups)
        models = ngettext("{n} model", "{n} models", n_models).format(n=n_models)
        line = _("sweeping {models} ({shapes}) for {epochs} epochs on {rows} rows").format(
            models=models, shapes=shapes, epochs=epochs, rows=n_train
        )
        self.stream.write(line + "\n")
        self.stream.flush()

    def __call__(self, point) -> None:
        last = point.epoch == point.total_epochs
        metric = _(SHORT[point.metric]) if point.metric in SHORT else point.metric
        line = _(
            "[shape {group}/{groups}: {hidden}] epoch {epoch}/{total}  median loss {loss:.4f}  best {metric} "
            "{best:.4f}  elapsed {elapsed}  ETA {eta}"
        ).format(
            group=point.group + 1,
            groups=point.n_groups,
            hidden="-".join(map(str, point.hidden)),
            epoch=point.epoch,
            total=point.total_epochs,
            loss=point.median_loss,
            metric=metric,
            best=point.best_metric,
            elapsed=_duration(point.elapsed_s),
            eta=_duration(point.eta_s),
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
