"""Whether this process was started by torchrun: its environment alone, read without importing torch (the
command line asks before anything else is loaded)."""

from __future__ import annotations

import os

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched() -> bool:
    """True in a process started by torchrun (or anything that sets its environment)."""
    return all(name in os.environ for name in TORCHRUN_ENV)
