"""The django.tasks backend: enqueue, results, JSON-only arguments, checks, and running a row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from pytest_django.fixtures import Settings

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    default_task_backend,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from django_cronrunner.errors import NotJSONError, TaskPathError
from django_cronrunner.models import TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.storage.results import MissingTask
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def drain() -> None:
    run_due_tasks(max_seconds=30)


def test_capabilities_are_declared() -> None:
    backend = task_backends["default"]
    assert isinstance(backend, CronRunnerBackend)
    assert backend.supports_defer and backend.supports_priority
    assert backend.supports_get_result and backend.supports_async_task


def test_enqueue_stores_a_ready_row_and_returns_its_result() -> None:
    seen: list[Any] = []

    def remember(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append(task_result)

    task_enqueued.connect(remember)
    try:
        result = tasks.add.using(priority=7).enqueue(2, 3)
    finally:
        task_enqueued.disconnect(remember)
    assert result.status == TaskResultStatus.READY
    assert (result.args, result.kwargs) == ([2, 3], {})
    record = TaskRecord.objects.get(pk=result.id)
    assert (record.task_path, record.priority, record.queue_name) == (
        "tests.testapp.tasks.add",
        7,
        "default",
    )
    assert [item.id for item in seen] == [result.id]


def test_results_are_read_back_from_a_fresh_lookup_after_the_run() -> None:
    result = tasks.add.enqueue(2, 3)
    failing = tasks.fail.enqueue("nope")
    drain()
    fresh = default_task_backend.get_result(result.id)
    assert (fresh.status, fresh.return_value) == (TaskResultStatus.SUCCESSFUL, 5)
    assert fresh.started_at and fresh.finished_at and fresh.last_attempted_at
    assert len(fresh.worker_ids) == 1
    result.refresh()
    assert result.return_value == 5
    failed = tasks.fail.get_result(failing.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.errors[0].exception_class_path == "builtins.ValueError"
    assert "ValueError: nope" in failed.errors[0].traceback


def test_async_enqueue_and_get_result() -> None:
    async def go() -> Any:
        result = await tasks.async_add.aenqueue(1, 1)
        return await default_task_backend.aget_result(result.id)

    # async_to_sync keeps the ORM calls on this thread, whose connection the test closes.
    assert async_to_sync(go)().status == TaskResultStatus.READY
    drain()
    assert TaskRecord.objects.get().return_value == 2


def test_deferred_task_waits_for_run_after() -> None:
    later = tasks.add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 2)
    drain()
    assert default_task_backend.get_result(later.id).status == TaskResultStatus.READY
    assert TaskRecord.objects.get().due_at == later.task.run_after


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", ""])
def test_unknown_or_malformed_ids_do_not_exist(bad_id: str) -> None:
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(bad_id)


def test_arguments_must_be_json_and_nothing_is_stored_otherwise() -> None:
    with pytest.raises(NotJSONError, match="arguments cannot be stored as JSON"):
        tasks.add.enqueue(object(), 1)
    with pytest.raises(NotJSONError, match="keyword arguments"):
        tasks.add.enqueue(a={1, 2}, b=1)
    assert TaskRecord.objects.count() == 0


def test_queue_not_in_queues_is_refused() -> None:
    with pytest.raises(InvalidTask, match="Queue 'invoices' is not valid"):
        tasks.add.using(queue_name="invoices").enqueue(1, 2)


def test_enqueue_rolls_back_with_the_callers_transaction() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.add.enqueue(1, 2)
        raise RuntimeError("roll back")
    assert TaskRecord.objects.count() == 0


def test_non_json_return_value_fails_the_task() -> None:
    result = tasks.return_object.enqueue()
    drain()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "django_cronrunner.errors.NotJSONError"
    assert "return value cannot be stored as JSON" in result.errors[0].traceback


def test_system_exit_in_a_task_fails_only_that_task() -> None:
    exiting = tasks.exit_process.enqueue()
    after = tasks.add.enqueue(1, 1)
    drain()
    assert tasks.exit_process.get_result(exiting.id).status == TaskResultStatus.FAILED
    assert tasks.add.get_result(after.id).return_value == 2


def test_task_with_context_sees_its_attempt_and_signals_are_sent() -> None:
    started: list[str] = []
    finished: list[str] = []

    def on_start(sender: Any, task_result: Any, **kwargs: Any) -> None:
        started.append(task_result.status)

    def on_finish(sender: Any, task_result: Any, **kwargs: Any) -> None:
        finished.append(task_result.status)

    task_started.connect(on_start)
    task_finished.connect(on_finish)
    try:
        result = tasks.attempt_number.enqueue()
        drain()
    finally:
        task_started.disconnect(on_start)
        task_finished.disconnect(on_finish)
    assert tasks.attempt_number.get_result(result.id).return_value == 1
    assert (started, finished) == (["RUNNING"], ["SUCCESSFUL"])


@pytest.mark.parametrize(
    ("task_path", "args", "kwargs", "message"),
    [
        ("tests.testapp.tasks.gone", [], {}, "no longer imports"),
        ("no_such_module.task", [], {}, "no longer imports"),
        ("tests.testapp.tasks.NOT_A_TASK", [], {}, "imports a int, not a Task; it was not called"),
        ("os.system", ["echo pwned"], {}, "imports a builtin_function_or_method, not a Task"),
        ("tests.testapp.tasks.add", {"a": 1}, {}, "are not a JSON list"),
        ("tests.testapp.tasks.add", [1], ["b"], "are not a JSON object"),
    ],
)
def test_rows_that_cannot_run_fail_with_a_clear_error_and_the_batch_goes_on(
    task_path: str, args: Any, kwargs: Any, message: str
) -> None:
    bad = TaskRecord.objects.create(
        backend_name="default",
        task_path=task_path,
        args=args,
        kwargs=kwargs,
        enqueued_at=timezone.now(),
        due_at=timezone.now(),
        priority=10,
    )
    good = tasks.add.enqueue(1, 2)
    drain()
    bad.refresh_from_db()
    assert bad.status == "FAILED"
    assert message in bad.errors[0]["traceback"]
    assert tasks.add.get_result(good.id).return_value == 3


@pytest.mark.parametrize("status", ["READY", "FAILED"])
def test_result_of_a_row_whose_task_no_longer_imports_is_still_read(status: str) -> None:
    record = TaskRecord.objects.create(
        backend_name="default",
        task_path="tests.testapp.tasks.gone",
        status=status,
        priority=3,
        queue_name="emails",
        enqueued_at=timezone.now(),
        due_at=timezone.now(),
        errors=[{"exception_class_path": "builtins.ValueError", "traceback": "ValueError: x\n"}]
        if status == "FAILED"
        else [],
    )
    result = default_task_backend.get_result(str(record.pk))
    assert (result.id, result.status) == (str(record.pk), status)
    assert [error.exception_class_path for error in result.errors] == (
        ["builtins.ValueError"] if status == "FAILED" else []
    )
    task = result.task
    assert isinstance(task, MissingTask)
    assert (task.module_path, task.name, task.priority, task.queue_name) == (
        "tests.testapp.tasks.gone",
        "gone",
        3,
        "emails",
    )
    message = r"'tests\.testapp\.tasks\.gone' no longer imports"
    with pytest.raises(TaskPathError, match=message):
        task.call()
    with pytest.raises(TaskPathError, match=message):
        task.enqueue()
    with pytest.raises(TaskPathError, match=message):
        task.func()


def test_check_reports_the_app_missing_and_an_unknown_database(settings: Settings) -> None:
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {"database": "elsewhere"}
    settings.TASKS = {**settings.TASKS, "default": default}
    backend = task_backends["default"]
    assert [error.id for error in backend.check()] == ["django_cronrunner.E002"]
    apps_without = [app for app in settings.INSTALLED_APPS if app != "django_cronrunner"]
    with override_settings(INSTALLED_APPS=apps_without):
        ids = [error.id for error in task_backends["default"].check()]
    assert "django_cronrunner.E001" in ids


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lease_seconds": 5}, "'lease_seconds'] must be a number of at least 10"),
        ({"claim_size": 0}, "'claim_size'] must be a whole number of at least 1"),
        ({"claim_size": True}, "'claim_size'] must be a whole number of at least 1"),
        ({"database": 3}, "'database'] must be a string"),
        ({"lock_file": 3}, "'lock_file'] must be a path"),
        ({"schedules": []}, "'schedules'] must be a dict"),
        ({"lease": 60}, "unknown keys ['lease']"),
    ],
)
def test_bad_options_name_the_key(
    settings: Settings, options: dict[str, Any], message: str
) -> None:
    settings.TASKS = {
        **settings.TASKS,
        "broken": {"BACKEND": "django_cronrunner.backend.CronRunnerBackend", "OPTIONS": options},
    }
    with pytest.raises(ImproperlyConfigured) as caught:
        _ = task_backends["broken"]
    assert message in str(caught.value)
