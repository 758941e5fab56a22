"""One batch over the in-memory store: order, budget, limits, interruptions, recovery, the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from cronrunner.clock import FakeClock
from cronrunner.drain import StopFlag, TaskReport, describe_task
from cronrunner.errors import StorageUnavailable
from cronrunner.lock import RunLock
from cronrunner.memory import MemoryDatabase, MemoryStore
from cronrunner.runner import RunSettings, describe_batch, run_batch
from cronrunner.store import BatchSummary, ClaimedTask, Outcome, Status, StopReason
from tests.cronrunner.fakes import START, ScriptedExecutor


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def db() -> MemoryDatabase:
    return MemoryDatabase()


def run(
    db: MemoryDatabase,
    clock: FakeClock,
    lock_path: Path,
    *,
    worker: str = "w1",
    max_seconds: float = 50,
    max_tasks: int | None = None,
    queues: frozenset[str] | None = None,
    executor: ScriptedExecutor | None = None,
    stop: StopFlag | None = None,
    reports: list[TaskReport] | None = None,
    before_drain: object = None,
) -> BatchSummary:
    lock = RunLock(lock_path, started_at=clock.now())
    store = MemoryStore(db, worker_id=worker, lock_key=lock.key, lease_seconds=60, queues=queues)
    return run_batch(
        store,
        [executor or ScriptedExecutor(clock)],
        lock,
        clock,
        RunSettings(max_seconds=max_seconds, max_tasks=max_tasks, claim_size=3, queues=queues),
        worker_id=worker,
        stop=stop,
        report=None if reports is None else reports.append,
        before_drain=before_drain,  # type: ignore[arg-type]
    )


def test_runs_by_priority_then_due_time_then_enqueue_order(
    db: MemoryDatabase, clock: FakeClock, tmp_path: Path
) -> None:
    low = db.add("ok", START, priority=-5)
    first_old = db.add("ok", START.replace(hour=10))
    urgent = db.add("ok", START, priority=50)
    second_old = db.add("ok", START.replace(hour=10))
    newer = db.add("ok", START.replace(hour=11))
    executor = ScriptedExecutor(clock)
    summary = run(db, clock, tmp_path / "l", executor=executor)
    assert executor.ran == [urgent.id, first_old.id, second_old.id, newer.id, low.id]
    assert (summary.tasks_run, summary.succeeded, summary.stop_reason) == (5, 5, StopReason.DRAINED)
    assert summary.backlog == 0
    assert executor.finished_ids == executor.ran
    assert {task.status for task in db.tasks.values()} == {Status.SUCCESSFUL}
    assert db.batches == [summary]


def test_deferred_tasks_and_other_queues_wait(
    db: MemoryDatabase, clock: FakeClock, tmp_path: Path
) -> None:
    later = db.add("ok", START.replace(hour=13))
    elsewhere = db.add("ok", START, queue_name="emails")
    now = db.add("ok", START)
    summary = run(db, clock, tmp_path / "l", queues=frozenset({"default"}))
    assert summary.tasks_run == 1
    assert db.tasks[now.id].status is Status.SUCCESSFUL
    assert db.tasks[later.id].status is db.tasks[elsewhere.id].status is Status.READY
    clock.set(START.replace(hour=13))
    assert run(db, clock, tmp_path / "l").tasks_run == 2


def test_failures_are_recorded_and_the_batch_goes_on(
    db: MemoryDatabase, clock: FakeClock, tmp_path: Path
) -> None:
    failing = db.add("fail", START, priority=1)
    fine = db.add("ok", START)
    reports: list[TaskReport] = []
    summary = run(db, clock, tmp_path / "l", reports=reports)
    assert (summary.succeeded, summary.failed) == (1, 1)
    assert db.tasks[failing.id].status is Status.FAILED
    assert db.tasks[failing.id].errors[0].exception_class_path == "builtins.ValueError"
    assert db.tasks[fine.id].return_value == fine.id
    assert describe_task(reports[0]) == (
        f"task {failing.id} fail FAILED (builtins.ValueError) in 0.000s"
    )


def test_no_task_starts_once_the_budget_is_spent(
    db: MemoryDatabase, clock: FakeClock, tmp_path: Path
) -> None:
    tasks = [db.add("slow:0.4", START) for _ in range(10)]
    summary = run(db, clock, tmp_path / "l", max_seconds=2)
    # Tasks start at 0.0, 0.4, ... 1.6; the one starting at 2.0 would be past the budget.
    assert summary.tasks_run == 5
    assert summary.stop_reason is StopReason.BUDGET_SPENT
    assert summary.backlog == 5
    assert summary.duration == pytest.approx(2.0)
    statuses = [db.tasks[task.id].status for task in tasks]
    assert statuses.count(Status.SUCCESSFUL) == 5
    assert statuses.count(Status.READY) == 5  # claimed but unstarted tasks were handed back
    assert all(task.claimed_by is None for task in db.tasks.values())


def test_a_running_task_may_overrun_the_budget(
    db: MemoryDatabase, clock: FakeClock, tmp_path: Path
) -> None:
    db.add("slow:30", START)
    db.add("ok", START)
    summary = run(db, clock, tmp_path / "l", max_seconds=10)
    assert (summary.tasks_run, summary.duration) == (1, 30)
    assert summary.stop_reason is StopReason.BUDGET_SPENT


def test_max_tasks_stops_the_run(db: MemoryDatabase, clock: FakeClock, tmp_path: Path) -> None:
    for _ in range(7):
        db.add("ok", START)
    summary = run(db, clock, tmp_path / "l", max_tasks=4)
    assert (summary.tasks_run, summary.stop_reason) == (4, StopReason.MAX_TASKS)
    ready = [task for task in db.tasks.values() if task.status is Status.READY]
    assert len(ready) == 3


def test_lock_held_records_a_batch_and_touches_nothing(
    db: MemoryDatabase, clock: FakeClock, tmp_path: Path
) -> None:
    db.add("ok", START)
    with RunLock(tmp_path / "l", started_at=START):
        summary = run(db, clock, tmp_path / "l", worker="w2")
    assert summary.stop_reason is StopReason.LOCK_HELD
    assert "Another run holds" in summary.error
    assert describe_batch(summary).startswith("batch skipped: Another run holds")
    assert db.batches == [summary]
    assert [task.status for task in db.tasks.values()] == [Status.READY]


def test_stop_request_ends_the_run_between_tasks(
    db: MemoryDatabase, clock: FakeClock, tmp_path: Path
) -> None:
    for _ in range(5):
        db.add("ok", START)
    stop = StopFlag()

    class StopDuringSecondTask(ScriptedExecutor):
        def run(self, task: ClaimedTask) -> Outcome:
            if len(self.ran) == 1:
                stop.request()  # as a SIGTERM handler would, while the task runs
            return super().run(task)

    finished: list[TaskReport] = []
    lock = RunLock(tmp_path / "l", started_at=START)
    summary = run_batch(
        MemoryStore(db, worker_id="w", lock_key=lock.key),
        [StopDuringSecondTask(clock)],
        lock,
        clock,
        RunSettings(max_seconds=50, claim_size=3),
        worker_id="w",
        stop=stop,
        report=finished.append,
    )
    assert (summary.tasks_run, summary.stop_reason) == (2, StopReason.INTERRUPTED)
    assert sum(task.status is Status.READY for task in db.tasks.values()) == 3


def test_ctrl_c_in_a_task_hands_back_the_rest_and_is_not_swallowed(
    db: MemoryDatabase, clock: FakeClock, tmp_path: Path
) -> None:
    db.add("ok", START, priority=3)
    interrupted = db.add("interrupt", START, priority=2)
    db.add("ok", START, priority=1)
    with pytest.raises(KeyboardInterrupt):
        run(db, clock, tmp_path / "l")
    (summary,) = db.batches
    assert summary.stop_reason is StopReason.INTERRUPTED
    assert summary.tasks_run == 1
    # The interrupted attempt stays RUNNING under this run's lock: the next run recovers it.
    assert db.tasks[interrupted.id].status is Status.RUNNING
    assert sorted(task.status for task in db.tasks.values()) == [
        Status.READY,
        Status.RUNNING,
        Status.SUCCESSFUL,
    ]
    # The lock was released, so the next run knows the holder is gone and recovers at once;
    # the recovered task runs again (this time without pressing Ctrl-C).
    db.tasks[interrupted.id].task_path = "ok"
    summary = run(db, clock, tmp_path / "l", worker="w2")
    assert summary.recovered == 1
    assert {task.status for task in db.tasks.values()} == {Status.SUCCESSFUL}
    assert [error.exception_class_path for error in db.tasks[interrupted.id].errors] == [
        "cronrunner.errors.RunnerDied"
    ]


def test_a_failing_store_is_recorded_if_possible_and_re_raised(
    db: MemoryDatabase, clock: FakeClock, tmp_path: Path
) -> None:
    def schedules_fail() -> int:
        raise StorageUnavailable("database went away")

    with pytest.raises(StorageUnavailable):
        run(db, clock, tmp_path / "l", before_drain=schedules_fail)
    (summary,) = db.batches
    assert summary.stop_reason is StopReason.ERROR
    assert summary.error == "StorageUnavailable: database went away"
    assert "stopped: error (StorageUnavailable: database went away)" in describe_batch(summary)
    # The lock is free again for the next run.
    RunLock(tmp_path / "l", started_at=START).acquire()


def test_summary_counts_scheduled_slots_and_describes_itself(
    db: MemoryDatabase, clock: FakeClock, tmp_path: Path
) -> None:
    summary = run(db, clock, tmp_path / "l", before_drain=lambda: 2)
    assert summary.scheduled == 2
    assert describe_batch(summary) == (
        "batch finished: 0 run (0 succeeded, 0 failed), 0 recovered, 2 scheduled, "
        "in 0.0s of a 50s budget; stopped: drained"
    )


@pytest.mark.parametrize("alone", [True, False], ids=["alone", "with another task"])
def test_a_retry_due_at_once_runs_in_the_same_run(
    db: MemoryDatabase, clock: FakeClock, tmp_path: Path, alone: bool
) -> None:
    retried = db.add("retry-now", START, priority=5)
    if not alone:
        db.add("ok", START)
    executor = ScriptedExecutor(clock)
    summary = run(db, clock, tmp_path / "l", executor=executor)
    assert executor.ran.count(retried.id) == 2
    assert db.tasks[retried.id].status is Status.SUCCESSFUL
    assert (summary.tasks_run, summary.failed, summary.stop_reason) == (
        3 - alone,
        1,
        StopReason.DRAINED,
    )
