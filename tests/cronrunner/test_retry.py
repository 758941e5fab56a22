"""Retry policy maths: attempts, backoff shapes, caps and jitter."""

from __future__ import annotations

import pytest

from cronrunner.errors import InvalidTaskSettings
from cronrunner.retry import Backoff, RetryPolicy


def test_default_is_no_retry() -> None:
    assert not RetryPolicy().retries_after(1)


def test_attempts_are_counted_from_one() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.retries_after(attempt) for attempt in (1, 2, 3)] == [True, True, False]


@pytest.mark.parametrize(
    ("backoff", "waits"),
    [
        ("exponential", [10, 20, 40, 80, 100]),
        ("linear", [10, 20, 30, 40, 50]),
        ("fixed", [10, 10, 10, 10, 10]),
    ],
)
def test_backoff_shapes_capped_by_max_delay(backoff: str, waits: list[float]) -> None:
    policy = RetryPolicy(max_attempts=9, backoff=backoff, delay=10, max_delay=100, jitter=False)
    assert [policy.wait_after(attempt) for attempt in range(1, 6)] == waits
    assert policy.backoff is Backoff(backoff)


def test_jitter_keeps_the_wait_between_half_and_all_of_it() -> None:
    policy = RetryPolicy(max_attempts=9, delay=10)
    assert policy.wait_after(2, rand=lambda: 0.0) == 10
    assert policy.wait_after(2, rand=lambda: 0.999999) == pytest.approx(20, abs=1e-4)
    assert policy.wait_after(60, rand=lambda: 0.5) == pytest.approx(3600 * 0.75)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"max_attempts": 2.5}, "max_attempts must be a whole number"),
        ({"max_attempts": True}, "max_attempts must be a whole number"),
        ({"backoff": "sometimes"}, "Unknown retry backoff 'sometimes'"),
        ({"delay": -1}, "delay must be a number of seconds"),
        ({"max_delay": float("nan")}, "max_delay must be a number of seconds"),
    ],
)
def test_impossible_policies_are_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidTaskSettings, match=message):
        RetryPolicy(**arguments)  # type: ignore[arg-type]
