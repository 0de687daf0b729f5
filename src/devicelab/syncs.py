"""The device's own view of host-device syncs: one watcher, used by ``bench`` (to count) and ``profile``
(to find each sync's source line).

On CUDA, ``torch.cuda.set_sync_debug_mode("warn")`` makes PyTorch warn on every synchronizing operation it
knows of (``.item()``, ``.cpu()``, boolean-mask indexing, ...). ``watch_device_syncs`` turns that mode on,
hands each such warning to a callback with the Python frame that made the sync, and afterwards puts back
the mode the user had (``torch.cuda.get_sync_debug_mode()``, which may be "warn" or "error" too) and the
warning filters, also when the block raises. Elsewhere (CPU, MPS) the device cannot tell: the block runs
as it is and reports that nothing was watched.

The debug mode slows each sync down: never time a block that is being watched.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

import torch

SYNC_WARNING = "called a synchronizing CUDA operation"


@dataclass(frozen=True)
class DebugMode:
    """How to read and set one device type's sync debug mode (torch's; tests pass a fake)."""

    get: Callable[[], int | str]
    set: Callable[[int | str], None]


def _cuda_debug_mode() -> DebugMode:
    return DebugMode(torch.cuda.get_sync_debug_mode, torch.cuda.set_sync_debug_mode)


# device type -> its debug mode; absent: the device cannot report its syncs
DEBUG_MODES: dict[str, Callable[[], DebugMode]] = {"cuda": _cuda_debug_mode}


def debug_mode_for(device: torch.device) -> DebugMode | None:
    """The sync debug mode of ``device``'s type, or None where there is none."""
    make = DEBUG_MODES.get(torch.device(device).type)
    return make() if make is not None else None


def _caller(frame: FrameType | None) -> FrameType | None:
    """The first frame outside the warnings machinery: the code that made the synchronizing call."""
    while frame is not None and frame.f_code.co_filename == warnings.__file__:
        frame = frame.f_back
    return frame


@contextlib.contextmanager
def watch_device_syncs(
    device: torch.device,
    on_sync: Callable[[FrameType | None], None],
    *,
    debug_mode: DebugMode | None = None,
) -> Iterator[bool]:
    """Inside the block, call ``on_sync(frame)`` for each sync the device reports; yields whether it can.

    ``debug_mode`` defaults to the device type's (CUDA only); pass a fake to test without a GPU. Other
    warnings go on to wherever they went before. The user's debug mode is put back afterwards.
    """
    mode = debug_mode if debug_mode is not None else debug_mode_for(device)
    if mode is None:
        yield False
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("always", message=f".*{SYNC_WARNING}")  # each sync, not once per line
        show = warnings.showwarning

        def showwarning(message, category, filename, lineno, file=None, line=None):
            if SYNC_WARNING in str(message):
                on_sync(_caller(sys._getframe(1)))
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = showwarning
        previous = mode.get()
        mode.set("warn")
        try:
            yield True
        finally:
            mode.set(previous)


@dataclass
class DeviceSyncCount:
    """Filled in when the ``count_device_syncs`` block ends; ``count`` is None where the device cannot tell."""

    count: int | None = None


@contextlib.contextmanager
def count_device_syncs(
    device: torch.device, *, debug_mode: DebugMode | None = None
) -> Iterator[DeviceSyncCount]:
    """How many synchronizing operations the device's debug mode reports inside the block."""
    result = DeviceSyncCount()
    seen = [0]

    def on_sync(frame: FrameType | None) -> None:
        seen[0] += 1

    with watch_device_syncs(device, on_sync, debug_mode=debug_mode) as watched:
        yield result
    result.count = seen[0] if watched else None
