"""The cost of one host-device sync, measured directly (to be merged with ``devicelab.hardware`` later).

A tiny op followed by ``.item()`` is timed against the same op alone; the difference is what reading one
value back costs: on a GPU the round trip (wait for the queue, copy, return), on the CPU almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from devicelab.devices import sync_fn
from devicelab.timing import Measurement, calibrate_number, measure


@dataclass(frozen=True)
class SyncCost:
    device: str
    op_and_read: Measurement  # (t + 1).item(), seconds per call
    op_only: Measurement  # t + 1, seconds per call (queued; synchronized once per repeat)

    @property
    def per_sync_s(self) -> float:
        """Median cost of the read alone; never below zero (noise can make the difference negative)."""
        return max(0.0, self.op_and_read.median - self.op_only.median)

    def to_dict(self) -> dict:
        return {
            "device": self.device,
            "per_sync_s": self.per_sync_s,
            "op_and_read": self.op_and_read.to_dict(),
            "op_only": self.op_only.to_dict(),
        }


def sync_round_trip(device: torch.device, *, repeats: int = 7, target_s: float = 0.02) -> SyncCost:
    """Measure one sync on ``device``: median over ``repeats`` of ``(t + 1).item()`` minus ``t + 1``."""
    t = torch.zeros((), device=device)
    sync = sync_fn(device)

    def op_and_read() -> float:
        return (t + 1).item()  # sync: the thing being measured

    def op_only() -> torch.Tensor:
        return t + 1

    results = []
    for fn in (op_and_read, op_only):
        number = calibrate_number(fn, sync=sync, target_s=target_s)
        results.append(measure(fn, sync=sync, warmup=2, repeats=repeats, number=number))
    return SyncCost(str(device), results[0], results[1])
