"""Running one stored row: what cannot run fails alone, outcomes and signals are faithful."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from cronrunner.store import ClaimedTask, Outcome
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import (
    TASKS_LOGGER,
    TaskResultStatus,
    task_backends,
    task_finished,
    task_started,
)
from django_cronrunner.errors import TaskPathError
from django_cronrunner.models import BatchRun, TaskRecord
from django_cronrunner.run.execution import TaskExecutor
from django_cronrunner.run.runner import run_due_tasks
from tests.django_cronrunner.rows import task_store
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def executor() -> TaskExecutor:
    backend = task_backends["default"]
    assert isinstance(backend, CronRunnerBackend)
    return TaskExecutor(backend)


@pytest.fixture
def signals() -> Iterator[list[tuple[str, str, str]]]:
    """Record (signal, result id, status) for every task_started and task_finished."""
    seen: list[tuple[str, str, str]] = []

    def on_started(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append(("started", task_result.id, task_result.status))

    def on_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append(("finished", task_result.id, task_result.status))

    task_started.connect(on_started)
    task_finished.connect(on_finished)
    yield seen
    task_started.disconnect(on_started)
    task_finished.disconnect(on_finished)


def row(task_path: str, args: Any = (), kwargs: Any = None, **fields: Any) -> TaskRecord:
    now = timezone.now()
    return TaskRecord(
        backend_name="default",
        task_path=task_path,
        args=list(args) if isinstance(args, tuple) else args,
        kwargs={} if kwargs is None else kwargs,
        enqueued_at=now,
        due_at=now,
        **fields,
    )


def claimed(record: TaskRecord) -> ClaimedTask:
    return ClaimedTask(
        id=str(record.pk),
        task_path=record.task_path,
        priority=record.priority,
        queue_name=record.queue_name,
        record=record,
    )


def failure_of(outcome: Outcome) -> tuple[str, str]:
    assert outcome.failure is not None, outcome
    return outcome.failure.exception_class_path, outcome.failure.traceback


@pytest.mark.parametrize(
    ("task_path", "message"),
    [
        ("tests.testapp.tasks.gone", "'tests.testapp.tasks.gone' no longer imports"),
        ("nodots", "'nodots' no longer imports"),
        ("tests.testapp.tasks.NOT_A_TASK", "imports a int, not a Task"),
        ("tests.testapp.tasks.Path", "imports a type, not a Task"),
        ("tests.testapp.broken_tasks.unreachable", "raised RuntimeError: this module is broken"),
    ],
)
def test_a_path_that_does_not_import_to_a_task_is_not_called(
    executor: TaskExecutor, signals: list[tuple[str, str, str]], task_path: str, message: str
) -> None:
    outcome = executor.run(claimed(row(task_path)))
    path, traceback = failure_of(outcome)
    assert path == "django_cronrunner.errors.TaskPathError"
    assert message in traceback
    assert signals == []


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ({"a": 1}, {}, "are not a JSON list"),
        ("1, 2", {}, "are not a JSON list"),
        (None, {}, "are not a JSON list"),
        ([1], ["b", 2], "are not a JSON object"),
        ([1], {2: "b"}, "are not a JSON object"),
    ],
)
def test_garbage_arguments_fail_the_row_without_calling_the_task(
    executor: TaskExecutor, args: Any, kwargs: Any, message: str
) -> None:
    outcome = executor.run(claimed(row("tests.testapp.tasks.add", args, kwargs)))
    path, traceback = failure_of(outcome)
    assert path == "django_cronrunner.errors.ArgumentsError"
    assert message in traceback


def test_wrong_arguments_for_the_signature_are_the_tasks_failure(executor: TaskExecutor) -> None:
    outcome = executor.run(claimed(row("tests.testapp.tasks.add", [1], {"c": 2})))
    path, traceback = failure_of(outcome)
    assert path == "builtins.TypeError"
    assert "unexpected keyword argument 'c'" in traceback


def test_a_non_json_return_value_is_a_failure(executor: TaskExecutor) -> None:
    path, traceback = failure_of(executor.run(claimed(row("tests.testapp.tasks.return_object"))))
    assert path == "django_cronrunner.errors.NotJSONError"
    assert "The task's return value cannot be stored as JSON" in traceback


def test_return_values_are_stored_as_json(executor: TaskExecutor) -> None:
    outcome = executor.run(claimed(row("tests.testapp.tasks.send_email", ["a@example.com"])))
    assert outcome == Outcome(return_value="sent to a@example.com")


def test_an_exception_is_stored_with_its_class_and_full_traceback() -> None:
    result = tasks.fail.enqueue("disk full")
    run_due_tasks(max_seconds=30)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    (error,) = result.errors
    assert error.exception_class_path == "builtins.ValueError"
    lines = error.traceback.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: disk full"
    assert 'testapp/tasks.py", line' in error.traceback and "in fail" in error.traceback
    assert result.finished_at is not None
    with pytest.raises(ValueError, match="Task failed"):
        _ = result.return_value


def test_a_context_task_sees_the_attempt_number_after_a_crash() -> None:
    result = tasks.attempt_number.enqueue()
    dead = task_store(worker="gone:1:dead", lock="another-host", lease=10)
    (first,) = dead.claim(timezone.now(), 1)
    assert dead.start(first, timezone.now())
    # The dead run's lease is long expired by the time the next run looks.
    TaskRecord.objects.filter(pk=result.id).update(lease_expires_at=timezone.now())
    summary = run_due_tasks(max_seconds=30)
    assert summary.recovered == 1
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 2)
    assert result.worker_ids[0] == "gone:1:dead" and len(result.worker_ids) == 2


def test_an_async_task_runs_to_completion(signals: list[tuple[str, str, str]]) -> None:
    result = tasks.async_add.enqueue(20, 22)
    run_due_tasks(max_seconds=30)
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)
    assert signals == [("started", result.id, "RUNNING"), ("finished", result.id, "SUCCESSFUL")]


def test_keyboard_interrupt_or_system_exit_from_a_task_is_its_failure_and_the_batch_goes_on(
    tmp_path: Path,
) -> None:
    interrupted = tasks.interrupt.enqueue()
    exited = tasks.exit_process.enqueue()
    retried = tasks.interrupt_then_succeed.enqueue(str(tmp_path / "attempts"))
    waiting = tasks.add.using(priority=-5).enqueue(1, 1)
    summary = run_due_tasks(max_seconds=30)
    assert (summary.stop_reason, summary.succeeded, summary.failed) == ("drained", 2, 3)
    failed = [tasks.interrupt.get_result(interrupted.id), tasks.exit_process.get_result(exited.id)]
    assert [result.status for result in failed] == [TaskResultStatus.FAILED] * 2
    assert [result.errors[0].exception_class_path for result in failed] == [
        "builtins.KeyboardInterrupt",
        "builtins.SystemExit",
    ]
    # Retried per its policy: the retry is due at once, so it ran in the same run.
    again = tasks.interrupt_then_succeed.get_result(retried.id)
    assert (again.status, again.return_value) == (TaskResultStatus.SUCCESSFUL, "done")
    assert [error.exception_class_path for error in again.errors] == ["builtins.KeyboardInterrupt"]
    assert tasks.add.get_result(waiting.id).return_value == 2
    assert BatchRun.objects.get().stop_reason == "drained"


def test_the_second_signal_stops_the_batch_and_the_task_runs_again_later() -> None:
    from cronrunner.shutdown import StopNow

    def second_signal(sender: Any, task_result: Any, **kwargs: Any) -> None:
        raise StopNow("SIGTERM")

    stopped = tasks.add.enqueue(2, 2)
    waiting = tasks.add.using(priority=-5).enqueue(1, 1)
    task_started.connect(second_signal)
    try:
        with pytest.raises(StopNow):
            run_due_tasks(max_seconds=30)
    finally:
        task_started.disconnect(second_signal)
    batch = BatchRun.objects.get()
    assert (batch.stop_reason, batch.error) == ("interrupted", "StopNow: SIGTERM")
    # Claimed but never started: handed straight back.
    assert tasks.add.get_result(waiting.id).status == TaskResultStatus.READY
    # The interrupted task was running; the next run with this lock recovers it.
    assert tasks.add.get_result(stopped.id).status == TaskResultStatus.RUNNING
    summary = run_due_tasks(max_seconds=30)
    assert (summary.recovered, summary.succeeded) == (1, 2)


def test_signals_carry_the_row_as_enqueued(
    settings: Settings, signals: list[tuple[str, str, str]]
) -> None:
    seen: list[tuple[int, str]] = []

    def on_started(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append((task_result.task.priority, task_result.task.queue_name))

    result = tasks.add.using(priority=7, queue_name="emails").enqueue(1, 2)
    task_started.connect(on_started)
    try:
        run_due_tasks(max_seconds=30)
    finally:
        task_started.disconnect(on_started)
    assert seen == [(7, "emails")]
    assert signals == [("started", result.id, "RUNNING"), ("finished", result.id, "SUCCESSFUL")]


def test_a_queue_removed_from_settings_does_not_break_the_batch_or_the_result(
    settings: Settings,
) -> None:
    queued = tasks.report.enqueue("q3")
    default = dict(settings.TASKS["default"])
    default["QUEUES"] = ["default", "emails"]
    settings.TASKS = {**settings.TASKS, "default": default}
    summary = run_due_tasks(max_seconds=30)
    assert (summary.stop_reason, summary.succeeded) == ("drained", 1)
    result = task_backends["default"].get_result(queued.id)
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, "report q3")
    assert result.task.queue_name == "reports"


def test_finished_sends_nothing_for_a_row_that_cannot_be_described(
    executor: TaskExecutor, signals: list[tuple[str, str, str]]
) -> None:
    broken = row("tests.testapp.tasks.add", args={"not": "a list"})
    outcome = executor.run(claimed(broken))
    executor.finished(claimed(broken), outcome)
    assert signals == []


def test_finished_is_sent_for_a_row_whose_task_no_longer_imports(
    executor: TaskExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    broken = row("tests.testapp.tasks.gone")
    seen: list[Any] = []

    def on_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append((task_result.task.module_path, sys.exc_info()[0]))

    task_finished.connect(on_finished)
    try:
        executor.finished(claimed(broken), executor.run(claimed(broken)))
    finally:
        task_finished.disconnect(on_finished)
    assert seen == [("tests.testapp.tasks.gone", TaskPathError)]


def test_django_logs_a_failed_task_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    failed = tasks.fail.enqueue("card declined")
    succeeded = tasks.add.enqueue(1, 2)
    with caplog.at_level(logging.INFO, logger=TASKS_LOGGER):
        run_due_tasks(max_seconds=60)
    finished = [
        record
        for record in caplog.records
        if record.name == TASKS_LOGGER
        and isinstance(record.args, tuple)
        and record.args[2] in (TaskResultStatus.FAILED, TaskResultStatus.SUCCESSFUL)
    ]
    records = {record.args[0]: record for record in finished if isinstance(record.args, tuple)}
    error = records[failed.id]
    assert error.levelno == logging.ERROR and error.exc_info is not None
    text = logging.Formatter().formatException(error.exc_info)
    assert "ValueError: card declined" in text
    assert "in fail" in text
    assert records[succeeded.id].exc_info is None


def test_a_failing_task_started_receiver_fails_that_attempt_only() -> None:
    def refuse(sender: Any, task_result: Any, **kwargs: Any) -> None:
        if task_result.task.name == "send_email":
            raise RuntimeError("no mail today")

    refused = tasks.send_email.enqueue("a@example.com")
    after = tasks.add.using(priority=-1).enqueue(1, 1)
    task_started.connect(refuse)
    try:
        summary = run_due_tasks(max_seconds=30)
    finally:
        task_started.disconnect(refuse)
    assert (summary.stop_reason, summary.succeeded, summary.failed) == ("drained", 1, 1)
    refused.refresh()
    assert refused.status == TaskResultStatus.FAILED
    assert refused.errors[0].exception_class_path == "builtins.RuntimeError"
    assert "RuntimeError: no mail today" in refused.errors[0].traceback
    assert tasks.add.get_result(after.id).return_value == 2


def test_a_failing_task_finished_receiver_is_logged_and_the_batch_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(sender: Any, task_result: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    first = tasks.add.enqueue(1, 1)
    second = tasks.add.using(priority=-1).enqueue(2, 2)
    task_finished.connect(explode)
    try:
        summary = run_due_tasks(max_seconds=30)
    finally:
        task_finished.disconnect(explode)
    assert (summary.stop_reason, summary.succeeded) == ("drained", 2)
    assert tasks.add.get_result(first.id).return_value == 2
    assert tasks.add.get_result(second.id).return_value == 4
    failures = [r for r in caplog.records if "task_finished receiver" in r.getMessage()]
    assert len(failures) == 2
    assert failures[0].exc_info is not None and "receiver bug" in str(failures[0].exc_info[1])
