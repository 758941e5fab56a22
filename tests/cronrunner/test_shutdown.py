"""Graceful shutdown: one signal asks to stop, a second interrupts, handlers are restored."""

from __future__ import annotations

import os
import signal

import pytest

from cronrunner.drain import StopFlag
from cronrunner.shutdown import GracefulShutdown


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_first_signal_requests_a_stop_and_second_interrupts(signum: signal.Signals) -> None:
    before = signal.getsignal(signum)
    stop = StopFlag()
    with GracefulShutdown(stop):
        os.kill(os.getpid(), signum)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signum)
    assert signal.getsignal(signum) is before


def test_handlers_are_restored_after_an_error() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RuntimeError), GracefulShutdown(StopFlag()):
        raise RuntimeError("boom")
    assert signal.getsignal(signal.SIGTERM) is before
