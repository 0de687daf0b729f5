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
