"""The fake clock and the budget that counts down on it."""

from __future__ import annotations

import time
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


@pytest.mark.skipif(not hasattr(time, "CLOCK_BOOTTIME"), reason="Linux's CLOCK_BOOTTIME")
def test_a_host_woken_from_a_suspend_carries_the_database_time_forward_by_its_sleep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    booted = [1000.0]
    real_clock_gettime = time.clock_gettime

    def clock_gettime(clock: int) -> float:
        return booted[0] if clock == time.CLOCK_BOOTTIME else real_clock_gettime(clock)

    monkeypatch.setattr(time, "clock_gettime", clock_gettime)
    # CLOCK_MONOTONIC stands still through a suspend: only the time since boot moves.
    monkeypatch.setattr(time, "monotonic", lambda: 5.0)
    clock = SystemClock()
    before = clock.monotonic()
    booted[0] += 300  # five minutes asleep
    assert clock.monotonic() - before == 300
    budget = Budget(50, clock)
    booted[0] += 60
    assert budget.spent()  # a run that slept through its budget claims nothing more


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
