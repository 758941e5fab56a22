"""Cancel, retry and run-now by result id; stopping running tasks; Django's proposed retry and
timeout spellings."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from cronrunner.store import Status
from django_cronrunner import control, models
from django_cronrunner.compat import TaskResultDoesNotExist
from django_cronrunner.errors import TaskCancelled, TaskTimedOut, TaskTimeout
from django_cronrunner.models import CANCELLED_PATH, TaskRecord, TaskRecordQuerySet
from django_cronrunner.run.runner import run_due_tasks
from tests.django_cronrunner.rows import task_store
from tests.e2e.conftest import wait_for
from tests.testapp.tasks import add, backs_off, fail, wait_for_cancel

pytestmark = pytest.mark.django_db(transaction=True)


def row(result_id: str) -> TaskRecord:
    return TaskRecord.objects.get(pk=result_id)


def test_cancelling_a_ready_task_fails_it_at_once_and_it_never_runs() -> None:
    result = add.enqueue(1, 2)
    assert control.cancel(result.id, reason="not needed") is control.Cancellation.CANCELLED
    record = row(result.id)
    assert record.status == Status.FAILED
    assert record.errors[-1]["exception_class_path"] == CANCELLED_PATH
    assert "not needed" in record.errors[-1]["traceback"]
    assert control.cancel(result.id) is control.Cancellation.NOT_PENDING
    assert run_due_tasks(max_seconds=10).tasks_run == 0


def test_cancelling_a_running_task_asks_it_to_stop_once() -> None:
    result = add.enqueue(1, 2)
    (task,) = task_store().claim(timezone.now(), 1)
    assert not control.cancel_requested(result.id)
    assert control.cancel(result.id) is control.Cancellation.STOP_REQUESTED
    assert control.cancel_requested(result.id)
    assert control.cancel(result.id) is control.Cancellation.NOT_PENDING
    assert row(task.id).status == Status.RUNNING


def test_a_task_handed_back_between_the_two_updates_is_still_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = add.enqueue(1, 2)
    task_store().claim(timezone.now(), 1)  # RUNNING: cancel_ready changes nothing
    request_stop = TaskRecordQuerySet.request_stop

    def handed_back_first(self: TaskRecordQuerySet, now: datetime) -> int:
        # The run hands its unstarted claim back just before the stop is asked.
        TaskRecord.objects.filter(pk=result.id).update(
            status=Status.READY, claimed_by=None, claim_lock=None, lease_expires_at=None
        )
        monkeypatch.setattr(TaskRecordQuerySet, "request_stop", request_stop)
        return request_stop(self, now)

    monkeypatch.setattr(TaskRecordQuerySet, "request_stop", handed_back_first)
    assert control.cancel(result.id) is control.Cancellation.CANCELLED
    assert row(result.id).status == Status.FAILED
    assert run_due_tasks(max_seconds=10).tasks_run == 0


def test_cancel_keeps_the_error_of_an_attempt_that_failed_into_a_retry_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = add.enqueue(1, 2)
    attempt = {"exception_class_path": "builtins.ValueError", "traceback": "ValueError\n"}
    as_list = models.as_list

    def a_run_fails_it_into_a_retry_first(value: object) -> list[object]:
        # Between cancel's read of the row and its UPDATE, a run starts the task and fails
        # it into a retry: READY again, one error more.
        monkeypatch.setattr(models, "as_list", as_list)
        TaskRecord.objects.filter(pk=result.id).update(
            last_attempted_at=timezone.now(), errors=[attempt], worker_ids=["w"]
        )
        return as_list(value)

    monkeypatch.setattr(models, "as_list", a_run_fails_it_into_a_retry_first)
    assert control.cancel(result.id) is control.Cancellation.CANCELLED
    record = row(result.id)
    assert record.status == Status.FAILED
    assert [error["exception_class_path"] for error in record.errors] == [
        "builtins.ValueError",
        CANCELLED_PATH,
    ]


def test_unknown_ids_are_refused() -> None:
    for bad in ("not-a-uuid", "01a233ff-a942-7891-90e2-dd27abfe34f4"):
        with pytest.raises(TaskResultDoesNotExist):
            control.cancel(bad)


def test_retry_and_run_now_by_id() -> None:
    failed = fail.enqueue("boom")
    run_due_tasks(max_seconds=10)
    assert row(failed.id).status == Status.FAILED
    assert control.retry(failed.id)
    assert not control.retry(failed.id)  # READY now: nothing to retry
    assert row(failed.id).status == Status.READY
    deferred = add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 1)
    assert control.run_now(deferred.id)
    assert row(deferred.id).due_at <= timezone.now()


def run_in_thread() -> threading.Thread:
    def run() -> None:
        try:
            run_due_tasks(max_seconds=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_task_that_checks_its_context_stops_when_cancelled(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    result = wait_for_cancel.enqueue(str(marker), 30)
    thread = run_in_thread()
    wait_for(marker.exists)
    assert control.cancel(result.id) is control.Cancellation.STOP_REQUESTED
    thread.join(timeout=20)
    assert not thread.is_alive()
    record = row(result.id)
    assert record.status == Status.FAILED
    assert record.errors[-1]["exception_class_path"] == CANCELLED_PATH
    assert record.attempts == 1


def test_a_backoff_callable_decides_the_wait_and_whether_to_retry() -> None:
    again = backs_off.enqueue("again")
    stop = backs_off.enqueue("stop now")
    for _ in range(3):
        run_due_tasks(max_seconds=10)
    assert (row(again.id).status, row(again.id).attempts) == (Status.FAILED, 3)
    assert (row(stop.id).status, row(stop.id).attempts) == (Status.FAILED, 1)


def test_django_spellings_of_the_timeout_error() -> None:
    assert issubclass(TaskTimeout, TimeoutError)
    assert TaskTimedOut is TaskTimeout
    assert issubclass(TaskCancelled, Exception)


def test_using_takes_our_options_and_refuses_others() -> None:
    keyed = add.using(priority=3, unique_key="one")
    assert (keyed.priority, keyed.unique_key) == (3, "one")
    with pytest.raises(TypeError, match="unknown options"):
        add.using(colour="blue")


def test_a_task_asked_to_stop_whose_run_died_is_not_run_again() -> None:
    result = add.enqueue(1, 2)
    dead = task_store("dead", lock="lock-dead")
    (task,) = dead.claim(timezone.now(), 1)
    assert dead.start(task, timezone.now())
    control.cancel(result.id)
    assert task_store("next", lock="lock-dead").recover(timezone.now()) == 1
    record = row(result.id)
    assert record.status == Status.FAILED
    paths = [error["exception_class_path"] for error in record.errors]
    assert paths[0].endswith("RunnerDied") and paths[-1] == CANCELLED_PATH
