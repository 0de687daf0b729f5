"""A stand-in for CUDA's sync debug mode on this GPU-less machine, passed to devicelab.syncs as a parameter."""

from __future__ import annotations

import warnings

from devicelab.syncs import SYNC_WARNING, DebugMode


class FakeSyncDebugMode:
    """``sync()`` does what a synchronizing CUDA operation does under each mode: nothing under "default"
    (0), a warning under "warn" (1), an error under "error" (2). The mode starts as the user's."""

    def __init__(self, user_mode: int | str = 0) -> None:
        self.mode = user_mode
        self.history = [user_mode]

    def get(self) -> int | str:
        return self.mode

    def set(self, mode: int | str) -> None:
        self.mode = mode
        self.history.append(mode)

    def sync(self) -> None:
        if self.mode in ("warn", 1):
            warnings.warn(SYNC_WARNING, UserWarning, stacklevel=2)  # torch's message, from the caller's line
        elif self.mode in ("error", 2):
            raise RuntimeError(SYNC_WARNING)

    @property
    def debug_mode(self) -> DebugMode:
        return DebugMode(self.get, self.set)
