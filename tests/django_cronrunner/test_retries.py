"""Retries on a real database: backoff through run_after, attempts recorded, limits honoured."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from pytest_django.fixtures import Settings

from cronrunner.clock import FakeClock
from django_cronrunner.compat import InvalidTask, TaskResultStatus, task_backends
from django_cronrunner.models import TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.task import task as task_with_options
from tests.django_cronrunner.rows import task_store
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock a second ahead of the real one, so tasks enqueued now are due."""
    return FakeClock(timezone.now() + timedelta(seconds=1))


def run_at(clock: FakeClock) -> None:
    run_due_tasks(clock=clock, max_seconds=30)


def test_a_flaky_task_is_retried_after_its_backoff_until_it_succeeds(clock: FakeClock) -> None:
    start = clock.now()
    result = tasks.flaky.enqueue(succeed_on=3)
    run_at(clock)
    record = TaskRecord.objects.get(pk=result.id)
    assert record.status == TaskResultStatus.READY
    assert len(record.errors) == 1 and record.finished_at is None
    # Fixed backoff of 60 s with jitter: between 30 and 60 s after the failure.
    assert start + timedelta(seconds=30) <= record.due_at <= start + timedelta(seconds=60)
    assert tasks.flaky.get_result(result.id).status == TaskResultStatus.READY
    clock.advance(20)
    run_at(clock)  # not yet due
    assert len(TaskRecord.objects.get(pk=result.id).errors) == 1
    clock.advance(45)
    run_at(clock)
    clock.advance(65)
    run_at(clock)
    final = tasks.flaky.get_result(result.id)
    assert (final.status, final.return_value) == (TaskResultStatus.SUCCESSFUL, 3)
    assert [error.exception_class_path for error in final.errors] == [
        "builtins.ConnectionError"
    ] * 2
    assert "attempt 2 failed" in final.errors[1].traceback
    assert len(final.worker_ids) == 3
    # The row keeps, for each failed attempt, which run made it and when.
    stored = TaskRecord.objects.get(pk=result.id).errors
    assert [error["worker_id"] for error in stored] == final.worker_ids[:2]
    first_failure = datetime.fromisoformat(stored[0]["recorded_at"])
    assert first_failure == start and stored[0]["attempted_at"] == start.isoformat()
    assert datetime.fromisoformat(stored[1]["attempted_at"]) == start + timedelta(seconds=65)


def test_attempts_stop_at_max_attempts(clock: FakeClock) -> None:
    result = tasks.flaky.enqueue(succeed_on=99)
    for _ in range(5):
        run_at(clock)
        clock.advance(61)
    final = tasks.flaky.get_result(result.id)
    assert final.status == TaskResultStatus.FAILED
    assert len(final.errors) == 3 and len(final.worker_ids) == 3


def test_no_retry_on_fails_at_once_and_other_errors_retry(clock: FakeClock) -> None:
    never = tasks.picky.enqueue("value")
    again = tasks.picky.enqueue("runtime")
    run_at(clock)
    assert TaskRecord.objects.get(pk=never.id).status == TaskResultStatus.FAILED
    assert TaskRecord.objects.get(pk=again.id).status == TaskResultStatus.READY


def test_rows_that_cannot_run_and_non_json_returns_are_not_retried(
    settings: Settings, clock: FakeClock
) -> None:
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {**default["OPTIONS"], "retry": {"max_attempts": 4}}
    settings.TASKS = {**settings.TASKS, "default": default}
    result = tasks.return_object.enqueue()
    run_at(clock)
    assert TaskRecord.objects.get(pk=result.id).status == TaskResultStatus.FAILED


def test_backend_default_applies_to_plain_tasks(settings: Settings, clock: FakeClock) -> None:
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {
        **default["OPTIONS"],
        "retry": {"max_attempts": 2, "backoff": "linear", "delay": 5, "jitter": False},
    }
    settings.TASKS = {**settings.TASKS, "default": default}
    result = tasks.fail.enqueue("once more")
    assert TaskRecord.objects.get(pk=result.id).max_attempts == 2
    start = clock.now()
    run_at(clock)
    assert TaskRecord.objects.get(pk=result.id).due_at == start + timedelta(seconds=5)
    clock.advance(5)
    run_at(clock)
    assert TaskRecord.objects.get(pk=result.id).status == TaskResultStatus.FAILED


def test_a_crashing_task_is_recovered_until_its_max_attempts(clock: FakeClock) -> None:
    now = clock.now()
    result = tasks.flaky.using(priority=1).enqueue(succeed_on=1)
    TaskRecord.objects.filter(pk=result.id).update(max_attempts=5)
    for attempt in range(5):
        store = task_store(worker=f"dead-{attempt}", lock="same-lock")
        store.recover(now)
        (claimed,) = store.claim(now, 1)
        store.start(claimed, now)
    record = TaskRecord.objects.get(pk=result.id)
    assert record.status == TaskResultStatus.RUNNING
    task_store(worker="w", lock="same-lock").recover(now)
    record.refresh_from_db()
    assert record.status == TaskResultStatus.FAILED
    assert len(record.errors) == 5


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"retry_backoff": "sometimes"}, "Unknown retry backoff 'sometimes'"),
        ({"retry_delay": -5}, "delay must be a number of seconds"),
        ({"no_retry_on": (int,)}, "no_retry_on must hold exception classes"),
    ],
)
def test_bad_retry_declarations_are_refused(declaration: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTask, match=message):
        task_with_options(**declaration)(tasks.add.func)


def test_bad_backend_retry_options_are_refused(settings: Settings, tmp_path: Path) -> None:
    settings.TASKS = {
        **settings.TASKS,
        "broken": {
            "BACKEND": "django_cronrunner.backend.CronRunnerBackend",
            "OPTIONS": {"retry": {"max_attempts": 0}},
        },
    }
    with pytest.raises(ImproperlyConfigured, match=r"\['retry'\]: max_attempts must be at least 1"):
        _ = task_backends["broken"]


def test_settings_need_a_cronrunner_backend() -> None:
    with pytest.raises(InvalidTask, match=r"TASKS\['immediate'\] does not use CronRunnerBackend"):
        task_with_options(backend="immediate", max_attempts=2)(tasks.add.func)


def test_the_decorator_keeps_the_frameworks_options() -> None:
    declared = task_with_options(priority=4, queue_name="emails", max_attempts=3, timeout=9)(
        tasks.add.func
    )
    assert (declared.priority, declared.queue_name) == (4, "emails")
    assert (declared.max_attempts, declared.timeout) == (3, 9)
