"""One injectable source of time for budgets, leases and schedules."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tell wall-clock time (aware, UTC) and monotonic time (seconds), and wait."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


def _seconds_since_boot() -> float:
    # Linux's CLOCK_BOOTTIME goes on counting while the host is suspended, CLOCK_MONOTONIC
    # does not: a run woken from a suspend must see the time that passed, or the database's
    # time it carries forward would lag and it would write leases that had already expired.
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class SystemClock:
    """Read the real clocks; the monotonic one counts a suspend where the system can tell."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    monotonic = staticmethod(
        _seconds_since_boot if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic
    )

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """Stand still until told to move; used by tests instead of sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        if start is None:
            start = datetime(2026, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware start time.")
        self._now = start.astimezone(UTC)
        self._monotonic = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def sleep(self, seconds: float) -> None:
        """Pass the time at once."""
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds`."""
        if seconds < 0:
            raise ValueError("A clock cannot go backwards.")
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds

    def set(self, when: datetime) -> None:
        """Jump the wall clock to `when`, moving the monotonic clock by the same amount."""
        self.advance((when.astimezone(UTC) - self._now).total_seconds())
