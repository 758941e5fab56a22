"""Graceful shutdown: a first SIGTERM or SIGINT asks the run to stop; a second stops it now."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

from cronrunner.drain import StopFlag

logger = logging.getLogger("cronrunner")

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopNow(KeyboardInterrupt):
    """The second shutdown signal: stop the run at once. Only this KeyboardInterrupt stops a
    run; one that a task raises itself is that task's failure."""


class GracefulShutdown:
    """While active, turn the first shutdown signal into a stop request and the second into
    StopNow, so a stopping run finishes its task and hands the rest back."""

    def __init__(self, stop: StopFlag, signals: tuple[signal.Signals, ...] = SHUTDOWN_SIGNALS):
        self.stop = stop
        self.signals = signals
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stop.requested:
            logger.warning("Second %s: stopping now; the next run recovers the task.", name)
            raise StopNow(name)
        logger.warning("%s: finishing the task in progress, then stopping.", name)
        self.stop.request()

    def __enter__(self) -> GracefulShutdown:
        # Handlers can only be installed from the main thread (tests may run us elsewhere).
        if threading.current_thread() is threading.main_thread():
            for each in self.signals:
                self._previous[each] = signal.signal(each, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for each, previous in self._previous.items():
            signal.signal(each, previous)
        self._previous.clear()
