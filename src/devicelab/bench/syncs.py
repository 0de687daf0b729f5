"""Counting host-device syncs, two ways.

``SyncCounter`` is the deliberate one: every read of a device value in the recording strategies goes
through it, so it counts exactly the ``.item()``/``.tolist()`` calls a loop makes, on any device (on the
CPU such a read is not a real sync, but it is the call that would be one on a GPU).

``count_device_syncs`` asks the device itself, where it can tell (CUDA's sync debug mode); it is
``devicelab.syncs``'s, the one watcher that ``devicelab profile``'s sync audit uses too, and it puts the
user's debug mode back afterwards. Elsewhere it reports ``None``.
"""

from __future__ import annotations

import torch

from devicelab.syncs import SYNC_WARNING, DeviceSyncCount, count_device_syncs

__all__ = ["SYNC_WARNING", "DeviceSyncCount", "SyncCounter", "count_device_syncs"]


class SyncCounter:
    """The call sites that read device values back to the host; ``count`` is how many reads were made."""

    def __init__(self) -> None:
        self.count = 0

    def item(self, tensor: torch.Tensor) -> float:
        self.count += 1
        return tensor.item()  # sync: the host waits for the device to produce this value (counted)

    def tolist(self, tensor: torch.Tensor) -> list:
        self.count += 1
        return tensor.tolist()  # sync: one copy of the whole tensor to the host (counted)
