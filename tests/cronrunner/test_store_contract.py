"""TaskStore semantics on the in-memory store: claims, leases, recovery, the heartbeat."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from cronrunner.heartbeat import Heartbeat
from cronrunner.memory import MemoryDatabase, MemoryStore
from cronrunner.recovery import CRASH_ATTEMPTS, RUNNER_DIED_PATH, recover_orphan
from cronrunner.store import Outcome, Status, TaskFailure
from tests.cronrunner.fakes import START


def store(db: MemoryDatabase, worker: str, lock: str = "lock-a", lease: float = 60) -> MemoryStore:
    return MemoryStore(db, worker_id=worker, lock_key=lock, lease_seconds=lease)


def test_two_runs_never_claim_the_same_task() -> None:
    db = MemoryDatabase()
    for _ in range(500):
        db.add("ok", START)
    claimed: dict[str, list[str]] = {f"w{n}": [] for n in range(4)}

    def claim_all(worker: str) -> None:
        runner = store(db, worker, lock=f"lock-{worker}")
        while batch := runner.claim(START, 7):
            claimed[worker].extend(task.id for task in batch)

    threads = [threading.Thread(target=claim_all, args=(worker,)) for worker in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [task_id for ids in claimed.values() for task_id in ids]
    assert len(every) == len(set(every)) == 500


def test_only_the_claimer_starts_finishes_or_releases() -> None:
    db = MemoryDatabase()
    db.add("ok", START)
    mine, theirs = store(db, "w1"), store(db, "w2", lock="lock-b")
    (task,) = mine.claim(START, 5)
    assert theirs.claim(START, 5) == []
    assert not theirs.start(task, START)
    assert not theirs.finish(task, Outcome(return_value=1), START)
    theirs.release([task], START)
    assert db.tasks[task.id].status is Status.RUNNING
    assert mine.start(task, START)
    assert mine.finish(task, Outcome(return_value=1), START)
    assert (db.tasks[task.id].status, db.tasks[task.id].return_value) == (Status.SUCCESSFUL, 1)
    assert not mine.finish(task, Outcome(return_value=2), START)  # finished once only


def test_expired_lease_lets_another_host_recover_the_task() -> None:
    db = MemoryDatabase()
    db.add("ok", START)
    dead, alive = store(db, "w1", lease=60), store(db, "w2", lock="lock-other-host")
    (task,) = dead.claim(START, 1)
    dead.start(task, START)
    assert alive.recover(START + timedelta(seconds=59)) == 0
    assert alive.recover(START + timedelta(seconds=61)) == 1
    recovered = db.tasks[task.id]
    assert recovered.status is Status.READY
    assert [error.exception_class_path for error in recovered.errors] == [RUNNER_DIED_PATH]
    # The dead run, should it wake up, can no longer write anything.
    assert not dead.finish(task, Outcome(return_value="late"), START + timedelta(minutes=5))


def test_a_run_that_claims_its_lost_task_again_stores_only_the_new_attempt() -> None:
    db = MemoryDatabase()
    db.add("ok", START)
    paused, other = store(db, "w1", lease=60), store(db, "w2", lock="lock-other-host")
    (first,) = paused.claim(START, 1)
    assert paused.start(first, START)
    later = START + timedelta(minutes=2)
    assert other.recover(later) == 1  # the paused run's lease ran out
    # The same run, awake again, claims and starts the task anew (another of its threads).
    (second,) = paused.claim(later, 1)
    assert paused.start(second, later)
    assert not paused.finish(first, Outcome(return_value="stale"), later)
    assert not paused.start(first, later)
    assert db.tasks[first.id].status is Status.RUNNING
    assert paused.finish(second, Outcome(return_value="fresh"), later)
    assert db.tasks[first.id].return_value == "fresh"


def test_a_stale_attempt_writes_nothing_even_before_its_run_starts_the_task_again() -> None:
    db = MemoryDatabase()
    db.add("ok", START)
    paused, other = store(db, "w1", lease=60), store(db, "w2", lock="lock-other-host")
    (stale,) = paused.claim(START, 1)
    assert paused.start(stale, START)
    later = START + timedelta(minutes=2)
    assert other.recover(later) == 1
    (again,) = paused.claim(later, 1)  # claimed anew, not started yet
    assert not paused.finish(stale, Outcome(return_value="stale"), later)
    assert paused.start(again, later)
    assert paused.finish(again, Outcome(return_value="fresh"), later)
    assert db.tasks[stale.id].return_value == "fresh"


def test_renewed_leases_keep_a_live_run_safe() -> None:
    db = MemoryDatabase()
    db.add("ok", START)
    slow, other = store(db, "w1", lease=60), store(db, "w2", lock="lock-other-host")
    (task,) = slow.claim(START, 1)
    slow.start(task, START)
    slow.renew_leases(START + timedelta(seconds=50))
    assert other.recover(START + timedelta(seconds=100)) == 0
    assert slow.finish(task, Outcome(return_value=1), START + timedelta(seconds=100))


def test_same_lock_means_the_previous_holder_is_dead() -> None:
    db = MemoryDatabase()
    db.add("ok", START)
    dead = store(db, "w1", lock="same-lock", lease=3600)
    (task,) = dead.claim(START, 1)
    # Never started: handed back without using an attempt.
    assert store(db, "w2", lock="same-lock").recover(START) == 1
    assert (db.tasks[task.id].status, db.tasks[task.id].errors) == (Status.READY, [])


def test_a_task_that_keeps_killing_its_runner_fails_after_a_few_attempts() -> None:
    db = MemoryDatabase()
    db.add("ok", START)
    for attempt in range(1, CRASH_ATTEMPTS + 1):
        runner = store(db, f"w{attempt}", lock="same-lock")
        runner.recover(START)
        (task,) = runner.claim(START, 1)
        runner.start(task, START)
    store(db, "w-last", lock="same-lock").recover(START)
    final = db.tasks[task.id]
    assert final.status is Status.FAILED
    assert len(final.errors) == CRASH_ATTEMPTS
    assert "died during attempt 3" in final.errors[-1].traceback


def test_a_lost_attempt_goes_behind_the_tasks_already_due() -> None:
    db = MemoryDatabase()
    crasher = db.add("crash", START)
    dead = store(db, "w1", lock="same-lock")
    (claimed,) = dead.claim(START, 1)
    dead.start(claimed, START)
    waiting = db.add("ok", START + timedelta(seconds=5))
    later = START + timedelta(seconds=10)
    runner = store(db, "w2", lock="same-lock")
    assert runner.recover(later) == 1
    assert db.tasks[crasher.id].due_at == later
    assert [task.id for task in runner.claim(later, 2)] == [waiting.id, crasher.id]


def test_a_claim_never_started_keeps_its_place() -> None:
    db = MemoryDatabase()
    first = db.add("ok", START)
    dead = store(db, "w1", lock="same-lock")
    dead.claim(START, 1)
    db.add("ok", START + timedelta(seconds=5))
    store(db, "w2", lock="same-lock").recover(START + timedelta(seconds=10))
    assert db.tasks[first.id].due_at == START


@pytest.mark.parametrize(
    ("worker_ids", "claimed_by", "max_attempts", "requeue", "failed"),
    [
        ([], "w1", 1, True, False),
        (["w0"], "w1", 1, True, False),
        (["w1"], "w1", 1, True, True),
        (["w0", "w1"], "w1", 1, True, True),
        (["w0", "w1", "w2"], "w2", 1, False, True),
        (["w0", "w1", "w2"], "w2", 5, True, True),
    ],
)
def test_recovery_decision(
    worker_ids: list[str], claimed_by: str, max_attempts: int, requeue: bool, failed: bool
) -> None:
    decision = recover_orphan(worker_ids, claimed_by, max_attempts)
    assert decision.requeue is requeue
    assert (decision.failure is not None) is failed


def test_failure_outcome_is_stored_with_its_error() -> None:
    db = MemoryDatabase()
    db.add("fail", START)
    runner = store(db, "w1")
    (task,) = runner.claim(START, 1)
    runner.start(task, START)
    failure = TaskFailure("builtins.ValueError", "Traceback...\nValueError: x\n")
    runner.finish(task, Outcome(failure=failure), START)
    assert db.tasks[task.id].status is Status.FAILED
    assert db.tasks[task.id].errors == [failure]
    assert db.tasks[task.id].worker_ids == ["w1"]


def test_heartbeat_beats_until_stopped_then_cleans_up_in_its_thread() -> None:
    beats = threading.Semaphore(0)
    cleaned: list[str] = []
    with Heartbeat(
        beats.release,
        interval=0.01,
        cleanup=lambda: cleaned.append(threading.current_thread().name),
    ):
        assert beats.acquire(timeout=5) and beats.acquire(timeout=5)
    assert cleaned == ["cronrunner-heartbeat"]


def test_a_failing_beat_is_logged_and_the_heartbeat_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = threading.Semaphore(0)

    def flaky() -> None:
        calls.release()
        raise ConnectionError("database hiccup")

    with Heartbeat(flaky, interval=0.01):
        assert calls.acquire(timeout=5) and calls.acquire(timeout=5)
    assert "Could not renew the run's leases." in caplog.text
    with pytest.raises(ValueError, match="positive"):
        Heartbeat(flaky, interval=0)


def test_a_failure_with_a_retry_time_goes_back_to_the_queue() -> None:
    db = MemoryDatabase()
    db.add("fail", START, max_attempts=2)
    runner = store(db, "w1")
    (task,) = runner.claim(START, 1)
    runner.start(task, START)
    failure = TaskFailure("builtins.ConnectionError", "ConnectionError\n")
    later = START + timedelta(seconds=30)
    assert runner.finish(task, Outcome(failure=failure, retry_at=later), START)
    stored = db.tasks[task.id]
    assert (stored.status, stored.due_at, stored.finished_at) == (Status.READY, later, None)
    assert stored.errors == [failure]
    assert runner.claim(START, 1) == []
    assert [claimed.id for claimed in runner.claim(later, 1)] == [task.id]
