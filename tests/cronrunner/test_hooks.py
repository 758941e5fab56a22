"""Batch hooks: called once at the start, per task, and once at the end, whatever happens."""

from __future__ import annotations

from pathlib import Path

import pytest

from cronrunner.clock import FakeClock
from cronrunner.drain import TaskReport
from cronrunner.errors import StorageUnavailable
from cronrunner.lock import RunLock
from cronrunner.memory import MemoryDatabase, MemoryStore
from cronrunner.runner import RunSettings, run_batch
from cronrunner.store import BatchSummary, StopReason
from tests.cronrunner.fakes import START, ScriptedExecutor


class Recorder:
    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db
        self.calls: list[str] = []

    def batch_started(self, summary: BatchSummary) -> None:
        self.calls.append("started")

    def task_finished(self, report: TaskReport) -> None:
        self.calls.append(f"task {report.task.task_path} {report.outcome.succeeded}")

    def batch_finished(self, summary: BatchSummary) -> None:
        # The batch log row is stored before the hook sees the batch end.
        assert self.db.batches[-1] is summary
        self.calls.append(f"finished {summary.stop_reason}")


def batch(db: MemoryDatabase, path: Path, hooks: Recorder, **kwargs: object) -> BatchSummary:
    clock = FakeClock(START)
    lock = RunLock(path, started_at=clock.now())
    store = MemoryStore(db, worker_id="w", lock_key=lock.key, lease_seconds=60, queues=None)
    return run_batch(
        store,
        [ScriptedExecutor(clock)],
        lock,
        clock,
        RunSettings(max_seconds=50),
        worker_id="w",
        hooks=hooks,
        **kwargs,  # type: ignore[arg-type]
    )


def test_hooks_see_the_start_each_task_and_the_end(tmp_path: Path) -> None:
    db = MemoryDatabase()
    db.add("ok", START)
    db.add("fail", START)
    reports: list[TaskReport] = []
    hooks = Recorder(db)
    batch(db, tmp_path / "l", hooks, report=reports.append)
    assert hooks.calls == ["started", "task ok True", "task fail False", "finished drained"]
    assert len(reports) == 2  # the caller's own report still gets every task


def test_hooks_see_the_end_of_a_batch_that_failed(tmp_path: Path) -> None:
    def schedules_fail() -> int:
        raise StorageUnavailable("database went away")

    db = MemoryDatabase()
    hooks = Recorder(db)
    with pytest.raises(StorageUnavailable):
        batch(db, tmp_path / "l", hooks, before_drain=schedules_fail)
    assert hooks.calls == ["started", f"finished {StopReason.ERROR}"]


def test_a_batch_that_finds_the_lock_held_calls_no_hook(tmp_path: Path) -> None:
    holder = RunLock(tmp_path / "l", started_at=START)
    holder.acquire()
    db = MemoryDatabase()
    hooks = Recorder(db)
    summary = batch(db, tmp_path / "l", hooks)
    assert summary.stop_reason is StopReason.LOCK_HELD
    assert hooks.calls == []
    holder.release()
