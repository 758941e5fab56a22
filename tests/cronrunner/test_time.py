"""The fake clock and the budget that counts down on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cronrunner.budget import Budget
from cronrunner.clock import FakeClock, SystemClock


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(datetime(2026, 6, 1, 14, tzinfo=UTC))
    assert clock.now() == datetime(2026, 6, 1, 14, tzinfo=UTC)
    clock.advance(90)
    assert clock.now() == datetime(2026, 6, 1, 14, 1, 30, tzinfo=UTC)
    assert clock.monotonic() == 90
    clock.set(datetime(2026, 6, 1, 15, tzinfo=UTC))
    assert clock.monotonic() == 3600
    with pytest.raises(ValueError, match="backwards"):
        clock.set(datetime(2026, 6, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2026, 6, 1))


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_budget_counts_down_and_is_spent_at_zero() -> None:
    clock = FakeClock()
    budget = Budget(10, clock)
    assert (budget.elapsed, budget.remaining, budget.spent()) == (0, 10, False)
    clock.advance(9.5)
    assert budget.remaining == 0.5 and not budget.spent()
    clock.advance(0.5)
    assert budget.spent()
    clock.advance(100)
    assert budget.remaining == 0 and budget.elapsed == 110


@pytest.mark.parametrize("seconds", [0, -1])
def test_budget_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Budget(seconds, FakeClock())
