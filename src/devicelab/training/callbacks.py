"""What the loop tells its caller while it runs (a progress bar, a notebook widget). No-op by default."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StartInfo:
    """Known once the device is chosen, before the first step."""

    device: str
    threads: int
    device_reason: str
    start_epoch: int  # epochs already done (a resumed run)
    total_epochs: int
    n_train: int
    n_test: int
    n_val: int = 0  # validation rows (taken from the training rows), for early stopping
    path: str = "eager"  # the runner: "eager" or a fast path's name
    path_reason: str = ""


@dataclass(frozen=True)
class LogPoint:
    """The state at a log point: read from the device in one host copy."""

    epoch: int  # epochs done, 1-based
    total_epochs: int
    train_loss: float
    metrics: dict[str, float]
    elapsed_s: float  # this session
    eta_s: float


class Callbacks:
    def on_start(self, info: StartInfo) -> None:
        """Called once before the first epoch."""

    def on_log(self, point: LogPoint) -> None:
        """Called at every log point (every ``log_every`` epochs, at the end and on a stop)."""

    def on_fallback(self, reason: str) -> None:
        """Called once if a fast path failed mid-run and the run went on on the eager step."""


class CallbackList(Callbacks):
    """Several callbacks as one, called in order (a progress bar and a TensorBoard writer)."""

    def __init__(self, *callbacks: Callbacks | None) -> None:
        self.callbacks = [c for c in callbacks if c is not None]

    def on_start(self, info: StartInfo) -> None:
        for callback in self.callbacks:
            callback.on_start(info)

    def on_log(self, point: LogPoint) -> None:
        for callback in self.callbacks:
            callback.on_log(point)

    def on_fallback(self, reason: str) -> None:
        for callback in self.callbacks:
            callback.on_fallback(reason)
