"""Counting host-device syncs, two ways.

``SyncCounter`` is the deliberate one: every read of a device value in the recording strategies goes
through it, so it counts exactly the ``.item()``/``.tolist()`` calls a loop makes, on any device (on the
CPU such a read is not a real sync, but it is the call that would be one on a GPU).

``count_device_syncs`` asks the device itself, where it can tell: on CUDA, PyTorch's sync debug mode
warns on each synchronizing operation, and the warnings are counted. Elsewhere it reports ``None``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

SYNC_WARNING = "called a synchronizing CUDA operation"


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


@dataclass
class DeviceSyncCount:
    """Filled in when the ``count_device_syncs`` block ends; ``count`` is None where the device cannot tell."""

    count: int | None = None


def _cuda_debug_mode(mode: str) -> None:
    torch.cuda.set_sync_debug_mode(mode)


# device type -> function setting PyTorch's sync debug mode ("warn" / "default"); absent: cannot count
DEBUG_MODE: dict[str, Callable[[str], None]] = {"cuda": _cuda_debug_mode}


@contextlib.contextmanager
def count_device_syncs(
    device: torch.device, *, set_mode: Callable[[str], None] | None = None
) -> Iterator[DeviceSyncCount]:
    """Count the synchronizing operations the device's debug mode flags inside the block.

    ``set_mode`` defaults to the device type's entry in ``DEBUG_MODE`` (CUDA only); pass one to test the
    counting without a GPU. The debug mode slows each sync down, so never time a block that counts.
    """
    result = DeviceSyncCount()
    set_mode = set_mode or DEBUG_MODE.get(device.type)
    if set_mode is None:
        yield result
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        set_mode("warn")
        try:
            yield result
        finally:
            set_mode("default")
    result.count = sum(SYNC_WARNING in str(w.message) for w in caught)
