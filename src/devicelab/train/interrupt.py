"""Ctrl-C as a request, not an exception: a SIGINT (or SIGTERM) handler sets a flag that the loop checks at
each epoch boundary, so training stops between steps and everything done so far is kept."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Ctrl-C, and `kill`/a job scheduler's polite stop: both mean "stop and keep what is done"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """Set when the user asked training to stop; read by the loop once per epoch (a plain bool)."""

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True


@contextmanager
def stop_on_sigint(flag: StopFlag | None = None) -> Iterator[StopFlag]:
    """While inside, the first Ctrl-C or SIGTERM sets ``flag.requested``; a second one acts as usual.

    Outside the main thread (where signal handlers cannot be installed) the flag is only set by code.
    """
    flag = flag or StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    # (getsignal gives None for a handler not set from Python: restore the default then)
    previous = {signum: signal.getsignal(signum) or signal.SIG_DFL for signum in STOP_SIGNALS}

    def on_signal(signum, frame) -> None:
        flag.request()
        signal.signal(signum, previous[signum])  # a second one is not held back

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    try:
        yield flag
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
