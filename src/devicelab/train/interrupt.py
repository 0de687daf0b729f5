"""Ctrl-C as a request, not an exception: a SIGINT handler sets a flag that the loop checks at each
epoch boundary, so training stops between steps and everything done so far is kept."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StopFlag:
    """Set when the user asked training to stop; read by the loop once per epoch (a plain bool)."""

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True


@contextmanager
def stop_on_sigint(flag: StopFlag | None = None) -> Iterator[StopFlag]:
    """While inside, the first Ctrl-C sets ``flag.requested``; a second one interrupts as usual.

    Outside the main thread (where signal handlers cannot be installed) the flag is only set by code.
    """
    flag = flag or StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame) -> None:
        flag.request()
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C is not held back

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
