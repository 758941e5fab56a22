"""Budget-aware picking: a task whose typical duration cannot fit the budget left waits."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from cronrunner.clock import FakeClock
from cronrunner.durations import SAMPLES_KEPT, DurationHistory, percentile
from cronrunner.lock import RunLock
from cronrunner.memory import MemoryDatabase, MemoryStore
from cronrunner.runner import RunSettings, run_batch
from cronrunner.store import BatchSummary, Status, StopReason
from tests.cronrunner.fakes import START, ScriptedExecutor


def run(db: MemoryDatabase, clock: FakeClock, tmp_path: Path, max_seconds: float) -> BatchSummary:
    lock = RunLock(tmp_path / "run.lock", started_at=clock.now())
    return run_batch(
        MemoryStore(db, worker_id="w", lock_key=lock.key),
        [ScriptedExecutor(clock)],
        lock,
        clock,
        RunSettings(max_seconds=max_seconds),
        worker_id="w",
    )


@pytest.mark.parametrize(
    ("samples", "expected"),
    [([4.0], 4.0), ([3.0, 1.0, 2.0], 3.0), ([float(n) for n in range(1, 21)], 19.0)],
)
def test_the_typical_duration_is_the_nearest_rank_95th_percentile(
    samples: list[float], expected: float
) -> None:
    assert percentile(samples) == expected


def test_a_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        percentile([])


def test_the_history_loads_once_and_keeps_the_latest_samples() -> None:
    loads: list[int] = []

    def load() -> dict[str, list[float]]:
        loads.append(1)
        return {"a": [100.0] * SAMPLES_KEPT}

    history = DurationHistory(load)
    history.add("b", 1.0)
    assert loads == []  # adding needs no stored history
    assert history.typical("a") == (100.0, SAMPLES_KEPT)
    for _ in range(SAMPLES_KEPT - 1):
        history.add("a", 1.0)
    # One old sample is left of twenty: the 95th percentile is the nineteenth, 1.0.
    assert history.typical("a") == (1.0, SAMPLES_KEPT)
    assert history.typical("unknown") is None
    assert history.changed() == {"a": [100.0, *[1.0] * (SAMPLES_KEPT - 1)], "b": [1.0]}
    assert loads == [1]


def test_a_task_that_cannot_fit_waits_and_the_run_goes_on_with_those_that_fit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, clock = MemoryDatabase(), FakeClock(START)
    db.durations["slow:30"] = [30.0] * 5
    quick = [db.add("slow:1", START, priority=2).id for _ in range(5)]
    long = db.add("slow:30", START, priority=1).id
    later = [db.add("slow:2", START).id for _ in range(2)]
    with caplog.at_level(logging.INFO, logger="cronrunner"):
        summary = run(db, clock, tmp_path, max_seconds=10)
    # 5 s spent, 5 s left: the 30 s task waits; each 2 s task fits (the second one by the
    # first one's duration, measured in this run).
    assert db.tasks[long].status is Status.READY and db.tasks[long].claimed_by is None
    assert all(db.tasks[task].status is Status.SUCCESSFUL for task in [*quick, *later])
    assert (summary.tasks_run, summary.stop_reason) == (7, StopReason.BUDGET_SPENT)
    assert summary.backlog == 1
    assert "Tasks of slow:30 are left for a later run" in caplog.text
    assert "30.0s (95th percentile of the last 5 attempts) and 5.0s of the budget" in caplog.text
    assert db.durations == {"slow:30": [30.0] * 5, "slow:1": [1.0] * 5, "slow:2": [2.0] * 2}

    # The next run starts with it: the first task of a run always starts.
    summary = run(db, clock, tmp_path, max_seconds=10)
    assert db.tasks[long].status is Status.SUCCESSFUL
    assert summary.tasks_run == 1
    assert db.durations["slow:30"] == [30.0] * 6


def test_a_task_never_measured_is_started(tmp_path: Path) -> None:
    db, clock = MemoryDatabase(), FakeClock(START)
    db.add("slow:9", START, priority=1)
    db.add("slow:30", START)
    summary = run(db, clock, tmp_path, max_seconds=10)
    assert summary.tasks_run == 2  # the second started with 1 s left
