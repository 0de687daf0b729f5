"""Ctrl-C as a request, not an exception: a SIGINT (or SIGTERM) handler sets a flag that the loop checks at
each epoch boundary, so training stops between steps and everything done so far is kept."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Ctrl-C, and `kill`/a job scheduler's polite stop: both mean "stop and keep what is done"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """Set when the user asked training to stop; read by the loop once per epoch (a plain bool).

    ``notice``: a line for stderr when the request comes, for callers whose next stop point may be
    seconds away (written with os.write, which is safe inside a signal handler).
    """

    def __init__(self, notice: str | None = None) -> None:
        self.requested = False
        self.notice = notice
        self.listening = False  # a stop_on_sigint scope has its handlers installed

    def request(self) -> None:
        if self.notice and not self.requested:
            os.write(2, f"{self.notice}\n".encode())
        self.requested = True


@contextmanager
def stop_on_sigint(flag: StopFlag | None = None) -> Iterator[StopFlag]:
    """While inside, the first Ctrl-C or SIGTERM sets ``flag.requested``; a second one acts as usual.

    Outside the main thread (where signal handlers cannot be installed) the flag is only set by code.
    Inside a scope already listening for ``flag`` (a command that trains, then saves), nothing changes, so
    there is no moment between the two where a signal is not caught, and a second one still quits.
    """
    flag = flag or StopFlag()
    if flag.listening or threading.current_thread() is not threading.main_thread():
        yield flag
        return
    # (getsignal gives None for a handler not set from Python: restore the default then)
    previous = {signum: signal.getsignal(signum) or signal.SIG_DFL for signum in STOP_SIGNALS}

    def on_signal(signum, frame) -> None:
        flag.request()
        signal.signal(signum, previous[signum])  # a second one is not held back

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    flag.listening = True
    try:
        yield flag
    finally:
        flag.listening = False
        for signum, handler in previous.items():
            signal.signal(signum, handler)
