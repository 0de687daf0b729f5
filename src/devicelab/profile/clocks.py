"""Clocks for timing inside hooks and phases without waiting for the device.

``mark()`` stamps "now" and returns an index; ``seconds(a, b)`` reads the interval between two stamps.
On the CPU a stamp is ``time.perf_counter()``. On CUDA a stamp is a CUDA event recorded on the current
stream, taken from a preallocated pool; the events are read once, after one synchronize, when the first
``seconds`` call is made (``read()``), so the timed code never waits for the GPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


class PerfClock:
    """Host wall-clock stamps (``time.perf_counter``)."""

    kind = "perf_counter"

    def __init__(self, capacity: int = 256) -> None:
        self._stamps = [0.0] * capacity
        self._used = 0

    def mark(self) -> int:
        if self._used == len(self._stamps):
            self._stamps.extend([0.0] * len(self._stamps))
        self._stamps[self._used] = time.perf_counter()
        self._used += 1
        return self._used - 1

    def read(self) -> None:
        return None

    def seconds(self, start: int, end: int) -> float:
        return self._stamps[end] - self._stamps[start]


class EventClock:
    """CUDA event stamps from a preallocated pool, read once at the end."""

    kind = "cuda_events"

    def __init__(self, device: torch.device, capacity: int = 256) -> None:
        self.device = device
        # events are recorded on this device's stream, whichever device is current
        self._stream = torch.cuda.current_stream(device)
        self._pool = self._new_events(capacity)
        self._used = 0
        self._read = False

    def _new_events(self, n: int) -> list:
        with torch.cuda.device(self.device):
            return [torch.cuda.Event(enable_timing=True) for _ in range(n)]

    def mark(self) -> int:
        if self._used == len(self._pool):
            self._pool.extend(self._new_events(len(self._pool)))  # rare: the pool was sized too small
        self._pool[self._used].record(self._stream)
        self._used += 1
        return self._used - 1

    def read(self) -> None:
        if not self._read:
            torch.cuda.synchronize(self.device)  # sync: once, after all timed work, to read every event
            self._read = True

    def seconds(self, start: int, end: int) -> float:
        self.read()
        return self._pool[start].elapsed_time(self._pool[end]) / 1000.0


Clock = PerfClock | EventClock

# Device types whose work is asynchronous and that have timing events; everything else uses perf_counter.
_DEVICE_CLOCKS: dict[str, Callable[[torch.device, int], Clock]] = {
    "cuda": lambda device, capacity: EventClock(device, capacity),
}


def clock_for(device: torch.device, capacity: int = 256) -> Clock:
    """The clock that times work on ``device``: CUDA events on CUDA, ``perf_counter`` elsewhere."""
    make = _DEVICE_CLOCKS.get(torch.device(device).type)
    return make(torch.device(device), capacity) if make else PerfClock(capacity)
