"""Retry policy maths: whether a failed attempt runs again, and after how long."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cronrunner.errors import InvalidTaskSettings


class Backoff(StrEnum):
    """How the wait between attempts grows."""

    EXPONENTIAL = "exponential"
    LINEAR = "linear"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most `max_attempts` attempts, `delay` seconds apart, the gap grown by `backoff`."""

    max_attempts: int = 1
    backoff: Backoff | str = Backoff.EXPONENTIAL  # a name is accepted and checked
    delay: float = 10.0
    max_delay: float = 3600.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise InvalidTaskSettings(
                f"max_attempts must be a whole number, not {self.max_attempts!r}."
            )
        if self.max_attempts < 1:
            raise InvalidTaskSettings(f"max_attempts must be at least 1, not {self.max_attempts}.")
        try:
            object.__setattr__(self, "backoff", Backoff(self.backoff))
        except ValueError as e:
            allowed = ", ".join(repr(choice.value) for choice in Backoff)
            raise InvalidTaskSettings(
                f"Unknown retry backoff {self.backoff!r}; use one of {allowed}."
            ) from e
        for name in ("delay", "max_delay"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value < 1e7
            ):
                raise InvalidTaskSettings(f"{name} must be a number of seconds, not {value!r}.")

    def retries_after(self, attempt: int) -> bool:
        """Say whether a failure of attempt number `attempt` (1-based) is tried again."""
        return attempt < self.max_attempts

    def wait_after(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Return the seconds to wait after failed attempt `attempt` (1-based) before the next."""
        if self.backoff is Backoff.EXPONENTIAL:
            wait = self.delay * 2.0 ** min(attempt - 1, 60)
        elif self.backoff is Backoff.LINEAR:
            wait = self.delay * attempt
        else:
            wait = self.delay
        wait = min(wait, self.max_delay)
        if self.jitter:
            # "Full jitter" on the upper half: retries of many tasks that failed together spread
            # out, yet none comes back sooner than half its nominal wait.
            wait = wait / 2 + rand() * wait / 2
        return wait
