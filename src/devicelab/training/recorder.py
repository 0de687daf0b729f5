"""The log points of a run: the only places the host reads from the device while training.

At each one the losses since the last log point and the test metrics are copied to the host together
(one sync), checked for NaN/inf, and the weights are snapshotted on the device, so a run that diverges
keeps the last good weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from devicelab.training.callbacks import LogPoint
from devicelab.training.evaluate import METRIC_NAMES, evaluate
from devicelab.training.workload import Workload, too_many_epochs


class Recorder:
    def __init__(
        self,
        work: Workload,
        task: str,
        start: int,
        total: int,
        previous: np.ndarray,
        previous_wall_s: float,
        y_scale: float = 1.0,
        to_host: Callable[[torch.Tensor], np.ndarray] | None = None,
        inverse: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        """``to_host``: how the packed log-point tensor reaches the host (under torchrun, reduced across
        the ranks first: ``devicelab.training.distributed.LogReduce``); default: one copy."""
        self.work, self.task, self.start, self.total, self.y_scale = work, task, start, total, y_scale
        self.to_host = to_host or _copy_to_host
        self.inverse = inverse  # a non-affine target transform's inverse (devicelab.training.units)
        self.previous_wall_s = previous_wall_s
        try:
            self.losses = np.full(total, np.nan, dtype=np.float32)
        except MemoryError:
            raise too_many_epochs(total, "the host") from None
        self.losses[:start] = previous[:start]
        self.last = start  # epochs whose losses are on the host
        self.rows: list[dict] = []
        self.host_syncs = 0
        self.diverged_epoch: int | None = None
        self.started = time.perf_counter()
        self.good_weights = self._snapshot()

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.work.model.state_dict().items()}  # device copies

    def read(self, epoch: int) -> LogPoint | None:
        """Record epochs up to ``epoch``; None if a loss among them is NaN or infinite."""
        work, names = self.work, METRIC_NAMES[self.task]
        test = work.losses[:0]  # no test rows (fit() without X_test): no test metrics, rather than NaN
        if len(work.x_test):
            test = evaluate(
                work.model, work.loss_fn, work.x_test, work.y_test, self.task, self.y_scale, self.inverse
            )
        else:
            names = ()
        if len(work.x_val):  # the validation loss, read in the same copy
            names = ("val_loss", *names)
            val = evaluate(
                work.model, work.loss_fn, work.x_val, work.y_val, self.task, self.y_scale, self.inverse
            )
            test = torch.cat([val[:1], test])
        packed = torch.cat([work.losses[self.last : epoch], test])
        host = self.to_host(packed)  # sync: the one host read of this log point
        self.host_syncs += 1
        chunk, values = host[: epoch - self.last], host[epoch - self.last :]
        finite = np.isfinite(chunk)
        if not finite.all():
            self.diverged_epoch = self.last + int(np.argmin(finite)) + 1
            work.model.load_state_dict(self.good_weights)
            return None
        self.losses[self.last : epoch] = chunk
        self.last = epoch
        self.good_weights = self._snapshot()
        elapsed = time.perf_counter() - self.started
        metrics = {name: float(v) for name, v in zip(names, values, strict=True)}
        self.rows.append(
            {
                "epoch": epoch,
                "train_loss": float(chunk[-1]),
                **metrics,
                "elapsed_s": self.previous_wall_s + elapsed,
            }
        )
        done = epoch - self.start
        eta = elapsed / done * (self.total - epoch) if done else float("nan")
        return LogPoint(epoch, self.total, float(chunk[-1]), metrics, elapsed, eta)


def _copy_to_host(packed: torch.Tensor) -> np.ndarray:
    return packed.cpu().numpy()  # sync: waits for the device's queued work, then copies
