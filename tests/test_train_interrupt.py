"""Ctrl-C as a request: the flag, its handlers, and a scope nested inside another (train, then save)."""

from __future__ import annotations

import os
import signal
import time

from devicelab.training.interrupt import StopFlag, stop_on_sigint


def _send_sigint_to_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # Python runs the handler between bytecodes of the main thread


def test_a_real_sigint_sets_the_flag_and_handlers_come_back():
    before = signal.getsignal(signal.SIGINT)
    with stop_on_sigint() as flag:
        _send_sigint_to_self()
        assert flag.requested
    assert signal.getsignal(signal.SIGINT) is before


def test_a_nested_scope_leaves_the_outer_handler_in_place():
    with stop_on_sigint() as outer:
        handler = signal.getsignal(signal.SIGINT)
        with stop_on_sigint(outer) as inner:
            assert inner is outer and signal.getsignal(signal.SIGINT) is handler
        # between training and saving the signal is still caught, not raised
        assert signal.getsignal(signal.SIGINT) is handler
        _send_sigint_to_self()
        assert outer.requested


def test_the_notice_is_written_once(capfd):
    flag = StopFlag("stopping soon")
    flag.request()
    flag.request()
    assert capfd.readouterr().err == "stopping soon\n"
