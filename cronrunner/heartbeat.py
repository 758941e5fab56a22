"""A background thread that renews a run's leases while its tasks run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

logger = logging.getLogger("cronrunner")


class Heartbeat:
    """Call `beat` every `interval` seconds until the context exits, then `cleanup` once."""

    def __init__(
        self,
        beat: Callable[[], None],
        interval: float,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("A heartbeat interval must be positive.")
        self._beat = beat
        self._cleanup = cleanup
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cronrunner-heartbeat", daemon=True)

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._beat()
            except Exception:
                # A missed beat only shortens the lease; the next beat may well succeed.
                logger.warning("Could not renew the run's leases.", exc_info=True)
        if self._cleanup is not None:
            # Resources such as database connections belong to this thread; only it can close them.
            self._cleanup()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join()
