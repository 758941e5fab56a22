"""A time budget measured on the monotonic clock."""

from __future__ import annotations

from cronrunner.clock import Clock


class Budget:
    """Count down `seconds` from the moment it is created."""

    def __init__(self, seconds: float, clock: Clock) -> None:
        if seconds <= 0:
            raise ValueError("A budget must be a positive number of seconds.")
        self.seconds = seconds
        self._clock = clock
        self._started = clock.monotonic()

    @property
    def elapsed(self) -> float:
        return self._clock.monotonic() - self._started

    @property
    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed)

    def spent(self) -> bool:
        """Return True once no time is left."""
        return self.remaining <= 0
