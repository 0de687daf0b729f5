"""Whether this process was started by torchrun (its environment alone, read without importing torch: the
command line asks before anything else is loaded), and whether devicelab joined a process group in it."""

from __future__ import annotations

import os

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched() -> bool:
    """True in a process started by torchrun (or anything that sets its environment)."""
    return all(name in os.environ for name in TORCHRUN_ENV)


_joined: list[bool] = []  # appended to when devicelab joins a process group in this process


def note_joined() -> None:
    """devicelab joined a process group here (``distributed.setup``)."""
    _joined.append(True)


def joined() -> bool:
    """Whether devicelab joined a process group in this process (a user's own script may have, unseen)."""
    return bool(_joined)
