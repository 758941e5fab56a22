"""The ORM task store on a real database: claims, exclusivity, leases, recovery, query counts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from cronrunner.store import BatchSummary, Outcome, Status, StopReason, TaskFailure
from django_cronrunner.models import BatchRun, TaskRecord, as_list
from django_cronrunner.run.runner import run_due_tasks
from tests.django_cronrunner.rows import task_store

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def add(
    priority: int = 0, due: datetime = NOW, queue: str = "default", **fields: Any
) -> TaskRecord:
    return TaskRecord.objects.create(
        backend_name="default",
        task_path="tests.testapp.tasks.add",
        args=[1, 2],
        priority=priority,
        queue_name=queue,
        due_at=due,
        enqueued_at=NOW - timedelta(hours=1),
        **fields,
    )


def status_of(record: TaskRecord) -> str:
    record.refresh_from_db()
    return record.status


def test_claims_highest_priority_first_then_oldest_due() -> None:
    low = add(priority=-3)
    old = add(due=NOW - timedelta(minutes=5))
    high = add(priority=9)
    new = add(due=NOW - timedelta(minutes=1))
    add(due=NOW + timedelta(seconds=1))  # not due yet
    add(queue="emails")
    claimed = task_store(queues=frozenset({"default"})).claim(NOW, 10)
    assert [task.id for task in claimed] == [str(row.pk) for row in (high, old, new, low)]
    assert {status_of(row) for row in (low, old, high, new)} == {Status.RUNNING}


def test_claim_respects_the_limit_and_leaves_the_rest() -> None:
    rows = [add() for _ in range(5)]
    assert len(task_store().claim(NOW, 2)) == 2
    assert sorted(status_of(row) for row in rows).count(Status.READY) == 3


def test_concurrent_claims_never_hand_out_a_task_twice() -> None:
    for _ in range(120):
        add()
    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def claim_until_empty(worker: str) -> None:
        try:
            mine = task_store(worker=worker, lock=f"lock-{worker}")
            barrier.wait()
            got: list[str] = []
            while batch := mine.claim(NOW, 5):
                got.extend(task.id for task in batch)
                for task in batch:
                    assert mine.start(task, NOW)
                    assert mine.finish(task, Outcome(return_value=3), NOW)
            claimed[worker] = got
        except BaseException as e:
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim_until_empty, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    every = [task_id for ids in claimed.values() for task_id in ids]
    assert len(every) == len(set(every)) == 120
    assert set(TaskRecord.objects.values_list("status", flat=True)) == {Status.SUCCESSFUL}


def test_only_the_claimer_may_start_finish_or_release() -> None:
    row = add()
    mine, theirs = task_store("w1"), task_store("w2", lock="lock-b")
    (task,) = mine.claim(NOW, 1)
    assert not theirs.start(task, NOW)
    assert not theirs.finish(task, Outcome(return_value=1), NOW)
    theirs.release([task], NOW)
    assert status_of(row) == Status.RUNNING
    assert mine.start(task, NOW)
    failure = TaskFailure("builtins.ValueError", "ValueError: x")
    assert mine.finish(task, Outcome(failure=failure), NOW)
    row.refresh_from_db()
    assert (row.status, row.worker_ids, row.claimed_by) == (Status.FAILED, ["w1"], None)
    assert row.errors == [
        {
            "exception_class_path": "builtins.ValueError",
            "traceback": "ValueError: x",
            "worker_id": "w1",
            "attempted_at": NOW.isoformat(),
            "recorded_at": NOW.isoformat(),
        }
    ]
    assert (row.started_at, row.last_attempted_at, row.finished_at) == (NOW, NOW, NOW)


def test_a_run_that_claims_its_lost_task_again_stores_only_the_new_attempt() -> None:
    row = add()
    paused, other = task_store("w1"), task_store("w2", lock="lock-b")
    (first,) = paused.claim(NOW, 1)
    assert paused.start(first, NOW)
    later = NOW + timedelta(minutes=5)
    assert other.recover(later) == 1  # the paused run's lease ran out
    # The same run, awake again, claims and starts the task anew (another of its threads).
    (second,) = paused.claim(later, 1)
    add()
    (third,) = paused.claim(later, 1)
    assert paused.start(second, later)
    # The stale attempt writes nothing, alone or sharing a statement with the next start.
    assert not paused.finish(first, Outcome(return_value="stale"), later)
    assert paused.finish_then_start(first, Outcome(return_value="stale"), third, later) == (
        False,
        True,
    )
    assert not paused.start(first, later)
    assert status_of(row) == Status.RUNNING
    assert paused.finish(second, Outcome(return_value="fresh"), later)
    row.refresh_from_db()
    assert (row.status, row.return_value) == (Status.SUCCESSFUL, "fresh")


def test_a_stale_attempt_writes_nothing_even_before_its_run_starts_the_task_again() -> None:
    row = add()
    paused, other = task_store("w1"), task_store("w2", lock="lock-b")
    (stale,) = paused.claim(NOW, 1)
    assert paused.start(stale, NOW)
    later = NOW + timedelta(minutes=5)
    assert other.recover(later) == 1
    (again,) = paused.claim(later, 1)  # claimed anew, not started yet
    assert not paused.finish(stale, Outcome(return_value="stale"), later)
    assert paused.start(again, later)
    assert paused.finish(again, Outcome(return_value="fresh"), later)
    row.refresh_from_db()
    assert (row.status, row.return_value) == (Status.SUCCESSFUL, "fresh")


def test_recovery_leaves_a_task_whose_run_renewed_its_lease_since_it_was_read() -> None:
    row = add()
    slow = task_store("w1")
    (task,) = slow.claim(NOW, 1)
    assert slow.start(task, NOW)
    later = NOW + timedelta(minutes=5)
    recoverer = task_store("w2", lock="lock-b")
    (orphan,) = recoverer.tasks.orphaned(later, "lock-b")
    slow.renew_leases(later)  # alive after all, between the read and the settling
    assert recoverer._settle_orphan(orphan, later) == 0
    assert status_of(row) == Status.RUNNING
    assert slow.finish(task, Outcome(return_value=3), later)


def test_a_task_asked_to_stop_between_its_claim_and_its_start_is_failed_unrun(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [add() for _ in range(3)]
    run = task_store()
    first, second, third = run.claim(NOW, 3)
    TaskRecord.objects.filter(pk__in=[rows[1].pk, rows[2].pk]).update(cancel_requested_at=NOW)
    assert run.start(first, NOW)
    assert run.finish_then_start(first, Outcome(return_value=3), second, NOW) == (True, False)
    # A hand-back fails it too, rather than queueing it for a later run to start.
    run.release([third], NOW)
    for row in rows[1:]:
        row.refresh_from_db()
        assert (row.status, row.claimed_by, row.worker_ids) == (Status.FAILED, None, [])
        assert [error["exception_class_path"] for error in as_list(row.errors)] == [
            "django_cronrunner.errors.TaskCancelled"
        ]
    assert f"Task {second.id} was asked to stop before it started" in caplog.text


def test_release_hands_unstarted_claims_back() -> None:
    rows = [add() for _ in range(3)]
    mine = task_store()
    claimed = mine.claim(NOW, 3)
    mine.release(claimed, NOW)
    assert {status_of(row) for row in rows} == {Status.READY}
    assert TaskRecord.objects.filter(claimed_by__isnull=False).count() == 0


def test_a_stale_runner_cannot_overwrite_the_run_that_took_over() -> None:
    row = add()
    stale, fresh = task_store("w1", lease=60), task_store("w2", lock="lock-other-host")
    (task,) = stale.claim(NOW, 1)
    stale.start(task, NOW)
    later = NOW + timedelta(seconds=61)
    assert fresh.recover(later) == 1
    (again,) = fresh.claim(later, 1)
    fresh.start(again, later)
    assert fresh.finish(again, Outcome(return_value="fresh"), later)
    assert not stale.finish(task, Outcome(return_value="stale"), later)  # paused past its lease
    row.refresh_from_db()
    assert (row.status, row.return_value, row.worker_ids) == (
        Status.SUCCESSFUL,
        "fresh",
        ["w1", "w2"],
    )
    assert row.errors[0]["exception_class_path"] == "cronrunner.errors.RunnerDied"


def test_renewed_leases_are_not_recovered() -> None:
    add()
    busy, other = task_store("w1", lease=60), task_store("w2", lock="lock-other-host")
    (task,) = busy.claim(NOW, 1)
    busy.start(task, NOW)
    busy.renew_leases(NOW + timedelta(seconds=50))
    assert other.recover(NOW + timedelta(seconds=100)) == 0


def test_same_lock_recovers_at_once_and_never_started_tasks_use_no_attempt() -> None:
    started, unstarted = add(priority=1), add()
    dead = task_store("w1", lock="same", lease=3600)
    first, _ = dead.claim(NOW, 2)
    dead.start(first, NOW)
    assert task_store("w2", lock="same").recover(NOW) == 2
    started.refresh_from_db()
    unstarted.refresh_from_db()
    assert (started.status, len(started.errors)) == (Status.READY, 1)
    assert (unstarted.status, unstarted.errors) == (Status.READY, [])


def test_a_lost_attempt_goes_behind_the_tasks_already_due() -> None:
    started, unstarted = add(priority=1), add()
    dead = task_store("w1", lock="same", lease=3600)
    first, _ = dead.claim(NOW, 2)
    dead.start(first, NOW)
    waiting = add(priority=1, due=NOW + timedelta(seconds=30))
    later = NOW + timedelta(minutes=1)
    task_store("w2", lock="same").recover(later)
    started.refresh_from_db()
    unstarted.refresh_from_db()
    # The untouched claim keeps its place; the lost attempt queues behind what was due.
    assert (started.due_at, unstarted.due_at) == (later, NOW)
    claimed = task_store("w3", lock="other").claim(later, 3)
    assert [task.id for task in claimed] == [str(waiting.pk), str(started.pk), str(unstarted.pk)]


def test_a_task_that_kills_every_runner_ends_failed() -> None:
    row = add()
    for attempt in range(3):
        runner = task_store(f"w{attempt}", lock="same")
        runner.recover(NOW)
        (task,) = runner.claim(NOW, 1)
        runner.start(task, NOW)
    task_store("w-last", lock="same").recover(NOW)
    row.refresh_from_db()
    assert row.status == Status.FAILED
    assert len(row.errors) == 3 and row.finished_at == NOW


def test_empty_run_costs_three_statements_and_a_reading_of_the_database_clock(
    tmp_path: Path,
) -> None:
    run_due_tasks(max_seconds=5, lock_file=tmp_path / "l")  # warm up the connection
    with CaptureQueriesContext(connection) as queries:
        run_due_tasks(max_seconds=5, lock_file=tmp_path / "l")
    statements = [
        query["sql"] for query in queries.captured_queries if query["sql"] not in TRANSACTION
    ]
    # The database's time, once (PostgreSQL and MariaDB: SQLite's clock is this host's),
    # recover (one SELECT), claim (one UPDATE or SELECT ... FOR UPDATE), the batch log INSERT.
    clock = 0 if connection.vendor == "sqlite" else 1
    assert len(statements) == 3 + clock, statements
    # SQLite and PostgreSQL claim in one autocommitted statement; MariaDB needs a transaction.
    expected = {"sqlite": 3, "postgresql": 4, "mysql": 6}[connection.vendor]
    assert len(queries.captured_queries) == expected, queries.captured_queries


TRANSACTION = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT"}


@pytest.mark.parametrize("claim_size", [1, 8])
def test_claim_and_finish_cost_a_fixed_number_of_queries(claim_size: int) -> None:
    for _ in range(claim_size):
        add()
    mine = task_store()
    with CaptureQueriesContext(connection) as claim_queries:
        claimed = mine.claim(NOW, claim_size)
    with CaptureQueriesContext(connection) as finish_queries:
        mine.start(claimed[0], NOW)
        mine.finish(claimed[0], Outcome(return_value=3), NOW)
    # Claiming costs the same whatever the batch size. PostgreSQL locks, marks and returns the
    # batch in one UPDATE ... RETURNING, and so does SQLite; MariaDB locks and
    # updates it in a transaction (BEGIN, SELECT ... FOR UPDATE, UPDATE, COMMIT).
    expected = {"sqlite": 1, "postgresql": 1, "mysql": 4}[connection.vendor]
    assert len(claim_queries.captured_queries) == expected, claim_queries.captured_queries
    assert len(claimed) == claim_size
    assert len(finish_queries.captured_queries) == 2


def test_a_result_and_the_next_start_share_one_commit() -> None:
    add()
    add()
    mine = task_store()
    first, second = mine.claim(NOW, 2)
    mine.start(first, NOW)
    with CaptureQueriesContext(connection) as queries:
        held = mine.finish_then_start(first, Outcome(return_value=3), second, NOW)
    assert held == (True, True)
    # One autocommitted statement: two updates in a WITH on PostgreSQL, one UPDATE of both
    # rows elsewhere.
    assert len(queries.captured_queries) == 1, queries.captured_queries
    first_row, second_row = (TaskRecord.objects.get(pk=task.id) for task in (first, second))
    assert (first_row.status, first_row.return_value) == ("SUCCESSFUL", 3)
    assert (second_row.status, second_row.last_attempted_at) == ("RUNNING", NOW)
    assert len(as_list(second_row.worker_ids)) == 1
    # Another run's claim is not ours: neither write lands, and both say so.
    theirs = task_store(worker="other", lock="lock-b")
    assert theirs.finish_then_start(second, Outcome(return_value=1), first, NOW) == (False, False)


@pytest.mark.parametrize("lost", ["finished", "started"])
def test_a_result_and_the_next_start_each_land_only_while_their_claim_holds(lost: str) -> None:
    for _ in range(2):
        add()
    mine = task_store()
    finished, started = mine.claim(NOW, 2)
    mine.start(finished, NOW)
    stolen = finished if lost == "finished" else started
    TaskRecord.objects.filter(pk=stolen.id).update(claimed_by="another run")
    held = mine.finish_then_start(finished, Outcome(return_value=3), started, NOW)
    assert held == (lost != "finished", lost != "started")
    finished_row, started_row = (TaskRecord.objects.get(pk=t.id) for t in (finished, started))
    if lost == "finished":
        # Another run's task is left as that run has it; ours starts.
        assert (finished_row.status, finished_row.claimed_by) == ("RUNNING", "another run")
        assert finished_row.return_value is None
        assert started_row.last_attempted_at == NOW
    else:
        assert (finished_row.status, finished_row.return_value) == ("SUCCESSFUL", 3)
        assert (started_row.claimed_by, started_row.last_attempted_at) == ("another run", None)
        assert as_list(started_row.worker_ids) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL EXPLAIN format")
def test_the_claim_query_uses_the_claim_index() -> None:
    TaskRecord.objects.bulk_create(
        TaskRecord(
            backend_name="default",
            task_path="tests.testapp.tasks.add",
            status=Status.SUCCESSFUL,
            due_at=NOW - timedelta(days=n % 30),
            enqueued_at=NOW,
        )
        for n in range(3000)
    )
    add()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE cronrunner_task")
    plan = TaskRecord.objects.filter(backend_name="default").due(NOW)[:8].explain()
    assert "cronrunner_task_claim" in plan, plan


def test_deferred_tasks_are_claimed_once_due_and_not_a_moment_before() -> None:
    later = add(due=NOW + timedelta(minutes=5))
    mine = task_store()
    assert mine.claim(NOW + timedelta(minutes=5) - timedelta(microseconds=1), 8) == []
    assert [task.id for task in mine.claim(NOW + timedelta(minutes=5), 8)] == [str(later.pk)]


def test_other_backends_rows_are_never_claimed_or_recovered() -> None:
    ready = add()
    running = add(status=Status.RUNNING, claim_lock="lock-a", claimed_by="x")
    TaskRecord.objects.filter(pk__in=[ready.pk, running.pk]).update(backend_name="other")
    mine = task_store(lock="lock-a")
    assert mine.recover(NOW) == 0
    assert mine.claim(NOW, 8) == []


def test_record_batch_stores_the_summary() -> None:
    summary = BatchSummary(
        worker_id="h:1:abcd",
        host="h" * 300,
        pid=1,
        started_at=NOW,
        max_seconds=50,
        max_tasks=10,
        queues=frozenset({"emails", "default"}),
        finished_at=NOW + timedelta(seconds=3),
        duration=3.25,
        tasks_run=4,
        succeeded=3,
        failed=1,
        recovered=2,
        scheduled=1,
        stop_reason=StopReason.MAX_TASKS,
        error="",
    )
    task_store().record_batch(summary)
    batch = BatchRun.objects.get()
    assert (batch.worker_id, batch.host, batch.pid, batch.backend_name) == (
        "h:1:abcd",
        "h" * 255,
        1,
        "default",
    )
    assert (batch.queues, batch.started_at, batch.finished_at, batch.duration) == (
        "default,emails",
        NOW,
        NOW + timedelta(seconds=3),
        3.25,
    )
    assert (batch.max_seconds, batch.max_tasks, batch.tasks_run, batch.succeeded) == (50, 10, 4, 3)
    assert (batch.failed, batch.recovered, batch.scheduled, batch.stop_reason) == (
        1,
        2,
        1,
        "max tasks",
    )


def test_an_empty_queue_set_claims_nothing() -> None:
    add()
    assert task_store(queues=frozenset()).claim(NOW, 8) == []
    assert task_store(queues=frozenset({"emails"})).claim(NOW, 8) == []
    assert len(task_store(queues=frozenset({"default", "emails"})).claim(NOW, 8)) == 1
