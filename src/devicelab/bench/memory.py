"""How much memory a run keeps: the growth of the process's resident memory, and on a GPU the peak of
the device allocator, each from the start of the run to its end (while the run's records are still alive).

Before each run, garbage is collected and (on Linux with glibc) freed heap memory is handed back to the
system, so that memory freed by an earlier run cannot hide the growth of this one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import torch


@dataclass(frozen=True)
class MemoryUse:
    host_growth_bytes: int  # resident memory at the end minus at the start
    device_peak_bytes: int | None  # device allocator peak minus what was allocated at the start; None on CPU

    @property
    def total_bytes(self) -> int:
        return self.host_growth_bytes + (self.device_peak_bytes or 0)


@dataclass(frozen=True)
class DeviceMemory:
    """The device allocator's counters for one device type."""

    reset_peak: Callable[[torch.device], None]
    allocated: Callable[[torch.device], int]
    peak: Callable[[torch.device], int]


def _accelerator_memory(module: Callable[[], object]) -> DeviceMemory:
    return DeviceMemory(
        reset_peak=lambda d: module().reset_peak_memory_stats(d),
        allocated=lambda d: int(module().memory_allocated(d)),
        peak=lambda d: int(module().max_memory_allocated(d)),
    )


# device type -> allocator counters; the CPU (no allocator statistics) and MPS (no peak) are absent.
DEVICE_MEMORY: dict[str, DeviceMemory] = {
    "cuda": _accelerator_memory(lambda: torch.cuda),
    "xpu": _accelerator_memory(lambda: torch.xpu),
}


def _malloc_trim() -> Callable[[], object]:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        libc = None
    trim = getattr(libc, "malloc_trim", None)
    return (lambda: trim(0)) if trim is not None else (lambda: None)


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Collect garbage and return freed heap pages to the system where the C library allows it."""
    gc.collect()
    _TRIM()


class MemoryProbe:
    """``start()`` before a run, ``stop()`` after it (before its records are dropped) -> MemoryUse."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.counters = DEVICE_MEMORY.get(device.type)
        self.process = psutil.Process()
        self._rss0 = 0
        self._allocated0 = 0

    def start(self) -> None:
        release_free_memory()
        if self.counters is not None:
            self.counters.reset_peak(self.device)
            self._allocated0 = self.counters.allocated(self.device)
        self._rss0 = self.process.memory_info().rss

    def stop(self) -> MemoryUse:
        rss = self.process.memory_info().rss
        peak = None
        if self.counters is not None:
            peak = self.counters.peak(self.device) - self._allocated0
        return MemoryUse(host_growth_bytes=rss - self._rss0, device_peak_bytes=peak)
