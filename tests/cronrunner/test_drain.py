"""The drain loop over the in-memory store: paced claims, one commit per task, polling, threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from cronrunner.clock import FakeClock
from cronrunner.drain import CLAIM_AHEAD_SECONDS
from cronrunner.lock import RunLock
from cronrunner.memory import MemoryDatabase, MemoryStore
from cronrunner.runner import RunSettings, run_batch
from cronrunner.store import BatchSummary, ClaimedTask, Outcome, Status, StopReason, TaskFailure
from tests.cronrunner.fakes import START, ScriptedExecutor


class CountingStore(MemoryStore):
    """Remember each claim's limit and which store calls began and ended attempts."""

    def __init__(self, db: MemoryDatabase, **kwargs: object) -> None:
        super().__init__(db, worker_id="w", lock_key="k", **kwargs)  # type: ignore[arg-type]
        self.limits: list[int] = []
        self.calls: list[str] = []

    def claim(
        self, now: datetime, limit: int, skip_paths: frozenset[str] = frozenset()
    ) -> Sequence[ClaimedTask]:
        self.limits.append(limit)
        return super().claim(now, limit, skip_paths)

    def start(self, task: ClaimedTask, now: datetime) -> bool:
        self.calls.append("start")
        return super().start(task, now)

    def finish(self, task: ClaimedTask, outcome: Outcome, now: datetime) -> bool:
        self.calls.append("finish")
        return super().finish(task, outcome, now)

    def finish_then_start(
        self, task: ClaimedTask, outcome: Outcome, next_task: ClaimedTask, now: datetime
    ) -> tuple[bool, bool]:
        self.calls.append("finish_then_start")
        return MemoryStore.finish(self, task, outcome, now), MemoryStore.start(self, next_task, now)


def run(
    store: MemoryStore,
    clock: FakeClock,
    tmp_path: Path,
    executors: Sequence[ScriptedExecutor],
    **settings: object,
) -> BatchSummary:
    lock = RunLock(tmp_path / "run.lock", started_at=clock.now())
    return run_batch(
        store,
        executors,
        lock,
        clock,
        RunSettings(**{"max_seconds": 50, **settings}),  # type: ignore[arg-type]
        worker_id=store.worker_id,
    )


def test_each_outcome_is_stored_with_the_next_start_in_one_call(tmp_path: Path) -> None:
    db, clock = MemoryDatabase(), FakeClock(START)
    for _ in range(4):
        db.add("ok", START)
    store = CountingStore(db)
    summary = run(store, clock, tmp_path, [ScriptedExecutor(clock)])
    assert summary.succeeded == 4
    assert store.calls == [
        "start",
        "finish_then_start",
        "finish_then_start",
        "finish_then_start",
        "finish",
    ]


@pytest.mark.parametrize(
    ("path", "limits"),
    [
        # One claim to learn the pace; at a millisecond a task, 0.1 s ahead is 100 tasks: the
        # claim size caps it. The last claim finds nothing.
        ("slow:0.001", [1, 16, 16, 16, 16]),
        # At five seconds a task, one at a time: nothing waits behind a claimed slow task.
        ("slow:5", [1, 1, 1, 1, 1]),
    ],
)
def test_claims_are_sized_to_start_within_a_tenth_of_a_second(
    tmp_path: Path, path: str, limits: list[int]
) -> None:
    assert CLAIM_AHEAD_SECONDS == 0.1
    db, clock = MemoryDatabase(), FakeClock(START)
    tasks = 40 if path == "slow:0.001" else 4
    for _ in range(tasks):
        db.add(path, START)
    store = CountingStore(db)
    summary = run(store, clock, tmp_path, [ScriptedExecutor(clock)], claim_size=16)
    assert summary.succeeded == tasks
    assert store.limits == limits


def test_polling_starts_a_task_enqueued_mid_run_and_ends_with_the_budget(tmp_path: Path) -> None:
    db = MemoryDatabase()
    late: list[str] = []

    class EnqueueAtTenSeconds(FakeClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            if not late and self.monotonic() >= 10:
                late.append(db.add("ok", self.now()).id)

    clock = EnqueueAtTenSeconds(START)
    executor = ScriptedExecutor(clock)
    starts: dict[str, datetime] = {}

    class StartTimes(MemoryStore):
        def start(self, task: ClaimedTask, now: datetime) -> bool:
            starts[task.id] = now
            return super().start(task, now)

    store = StartTimes(db, worker_id="w", lock_key="k")
    summary = run(store, clock, tmp_path, [executor], max_seconds=30, poll_seconds=1)
    assert executor.ran == late
    assert (starts[late[0]] - START).total_seconds() <= 11
    assert summary.stop_reason is StopReason.BUDGET_SPENT
    assert summary.duration == pytest.approx(30)


def test_without_polling_an_empty_queue_ends_the_run_and_idle_work_runs_once(
    tmp_path: Path,
) -> None:
    db, clock = MemoryDatabase(), FakeClock(START)
    db.add("ok", START)
    idled: list[float] = []
    lock = RunLock(tmp_path / "run.lock", started_at=clock.now())
    summary = run_batch(
        MemoryStore(db, worker_id="w", lock_key=lock.key),
        [ScriptedExecutor(clock)],
        lock,
        clock,
        RunSettings(max_seconds=50, poll_seconds=None),
        worker_id="w",
        idle=lambda: idled.append(clock.monotonic()),
    )
    assert (summary.stop_reason, summary.tasks_run, idled) == (StopReason.DRAINED, 1, [0.0])


class RendezvousExecutor(ScriptedExecutor):
    """Tasks `meet` wait until `parties` of them run at once; they fail if that never happens."""

    def __init__(self, clock: FakeClock, barrier: threading.Barrier, log: list[str]) -> None:
        super().__init__(clock)
        self.barrier = barrier
        self.log = log

    def run(self, task: ClaimedTask) -> Outcome:
        self.log.append(task.id)
        if task.task_path == "meet":
            try:
                self.barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                return Outcome(failure=TaskFailure("threading.BrokenBarrierError", ""))
        return Outcome(return_value=task.id)


def test_threads_run_tasks_at_the_same_time_in_priority_order(tmp_path: Path) -> None:
    db, clock = MemoryDatabase(), FakeClock(START)
    urgent = [db.add("meet", START, priority=10).id for _ in range(3)]
    rest = [db.add("meet", START).id for _ in range(3)]
    barrier, started = threading.Barrier(3), []
    executors = [RendezvousExecutor(clock, barrier, started) for _ in range(3)]
    summary = run(MemoryStore(db, worker_id="w", lock_key="k"), clock, tmp_path, executors)
    # Three tasks could only pass the barrier together: they ran on three threads at once.
    assert (summary.succeeded, summary.failed, summary.stop_reason) == (6, 0, StopReason.DRAINED)
    assert sorted(started[:3]) == sorted(urgent)
    assert sorted(started[3:]) == sorted(rest)
    assert all(executor.log for executor in executors)


class HidingStore(MemoryStore):
    """Claims that hide every due row from other claims while they run, as MariaDB's
    SELECT ... FOR UPDATE SKIP LOCKED does when its plan reads the whole table."""

    def __init__(self, db: MemoryDatabase) -> None:
        super().__init__(db, worker_id="w", lock_key="k")
        self.claiming = threading.Lock()
        self.hidden = 0

    def claim(
        self, now: datetime, limit: int, skip_paths: frozenset[str] = frozenset()
    ) -> Sequence[ClaimedTask]:
        if not self.claiming.acquire(blocking=False):
            self.hidden += 1
            return []
        try:
            time.sleep(0.02)  # the claim's transaction holds its locks a while
            return super().claim(now, limit, skip_paths)
        finally:
            self.claiming.release()


def test_a_thread_whose_claim_found_rows_locked_waits_for_the_others(tmp_path: Path) -> None:
    db, clock = MemoryDatabase(), FakeClock(START)
    for _ in range(6):
        db.add("meet", START)
    barrier, started = threading.Barrier(3), []
    executors = [RendezvousExecutor(clock, barrier, started) for _ in range(3)]
    store = HidingStore(db)
    summary = run(store, clock, tmp_path, executors)
    # Threads that found every row locked looked again instead of ending: three ran at once.
    assert store.hidden > 0
    assert (summary.succeeded, summary.failed, summary.stop_reason) == (6, 0, StopReason.DRAINED)


def test_threads_stop_at_max_tasks_exactly(tmp_path: Path) -> None:
    db, clock = MemoryDatabase(), FakeClock(START)
    for _ in range(20):
        db.add("ok", START)
    executors = [ScriptedExecutor(clock) for _ in range(4)]
    summary = run(
        MemoryStore(db, worker_id="w", lock_key="k"), clock, tmp_path, executors, max_tasks=7
    )
    assert (summary.tasks_run, summary.stop_reason) == (7, StopReason.MAX_TASKS)
    assert sum(task.status is Status.SUCCESSFUL for task in db.tasks.values()) == 7
    assert sum(task.status is Status.READY for task in db.tasks.values()) == 13


def test_a_thread_that_fails_stops_the_others_and_the_run_raises(tmp_path: Path) -> None:
    db, clock = MemoryDatabase(), FakeClock(START)
    for _ in range(10):
        db.add("ok", START)

    class BrokenStore(MemoryStore):
        def finish_then_start(
            self, task: ClaimedTask, outcome: Outcome, next_task: ClaimedTask, now: datetime
        ) -> tuple[bool, bool]:
            raise ConnectionError("database went away")

    store = BrokenStore(db, worker_id="w", lock_key="k")
    executors = [ScriptedExecutor(clock) for _ in range(2)]
    with pytest.raises(ConnectionError, match="went away"):
        run(store, clock, tmp_path, executors)
    assert db.batches[-1].stop_reason is StopReason.ERROR
    # Each thread ran one task and was refused the next: the first failure stopped the others.
    ran = [task_id for executor in executors for task_id in executor.ran]
    assert len(ran) == len(set(ran)) <= 2
    assert sum(task.status is Status.READY for task in db.tasks.values()) >= 6


@pytest.mark.parametrize("threads", [1, 2])
def test_off_the_first_task_too_must_fit_and_what_never_fits_is_named(
    tmp_path: Path, threads: int
) -> None:
    db, clock = MemoryDatabase(), FakeClock(START)
    db.durations["slow:30"] = [30.0] * 5
    long = db.add("slow:30", START, priority=5).id
    quick = db.add("slow:1", START).id
    store = MemoryStore(db, worker_id="w", lock_key="k")
    executors = [ScriptedExecutor(clock) for _ in range(threads)]
    summary = run(store, clock, tmp_path, executors, max_seconds=10, first_task_always_starts=False)
    # The web trigger's case: a task longer than the request would be killed mid-run.
    assert db.tasks[long].status is Status.READY and db.tasks[long].claimed_by is None
    assert db.tasks[quick].status is Status.SUCCESSFUL
    assert summary.too_long == {"slow:30": 30.0}
    assert (summary.stop_reason, summary.backlog) == (StopReason.BUDGET_SPENT, 1)
    # By default the first task of a run starts whatever its typical duration.
    summary = run(store, clock, tmp_path, executors, max_seconds=10)
    assert db.tasks[long].status is Status.SUCCESSFUL and summary.too_long == {}
