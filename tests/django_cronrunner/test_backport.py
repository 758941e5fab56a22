"""Tasks that apps declare with the django-tasks backport are stored and run like any other."""

from __future__ import annotations

import inspect
import os
from typing import Any

import pytest
from django.db import transaction

from django_cronrunner.compat import NATIVE_TASKS, TaskResultStatus, default_task_backend
from django_cronrunner.models import TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.task import CronRunnerTask

django_tasks: Any
try:
    import django_tasks
except ImportError:  # pragma: no cover - the test extra installs it
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("the django-tasks backport is not installed", allow_module_level=True)

from tests.backportapp import tasks  # noqa: E402 - needs the backport

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_backport_decorator_builds_our_task_class() -> None:
    # Both decorators ask the backend configured in TASKS for its task class.
    assert isinstance(tasks.shout, CronRunnerTask)
    assert isinstance(tasks.report_attempt, CronRunnerTask)


def test_backport_tasks_are_stored_and_run_later() -> None:
    shouted = tasks.shout.enqueue("quiet")
    reported = tasks.report_attempt.enqueue("weekly")
    failed = tasks.fail_loudly.enqueue()
    assert TaskRecord.objects.get(pk=shouted.id).task_path == "tests.backportapp.tasks.shout"
    assert tasks.shout.get_result(shouted.id).status == TaskResultStatus.READY
    summary = run_due_tasks(max_seconds=30)
    assert (summary.succeeded, summary.failed) == (2, 1)
    assert tasks.shout.get_result(shouted.id).return_value == "QUIET"
    # The higher priority ran first, on the queue it declared, and saw its attempt number.
    record = TaskRecord.objects.get(pk=reported.id)
    assert (record.priority, record.queue_name) == (7, "reports")
    assert record.return_value == {"name": "weekly", "attempt": 1}
    error = tasks.fail_loudly.get_result(failed.id).errors[0]
    assert error.exception_class_path == "builtins.RuntimeError"


def test_results_come_back_through_either_api() -> None:
    result = tasks.shout.enqueue("both")
    run_due_tasks(max_seconds=30)
    ours = default_task_backend.get_result(result.id)
    theirs = django_tasks.default_task_backend.get_result(result.id)
    assert ours.return_value == theirs.return_value == "BOTH"
    assert theirs.status == TaskResultStatus.SUCCESSFUL


def test_a_rolled_back_enqueue_stores_nothing() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.shout.enqueue("never")
        raise RuntimeError("roll back")
    assert not TaskRecord.objects.exists()


@pytest.mark.skipif(
    "enqueue_on_commit" not in inspect.signature(django_tasks.task).parameters,
    reason="django-tasks 0.11 dropped enqueue_on_commit",
)
def test_enqueue_on_commit_from_older_backports_is_accepted() -> None:
    on_commit = django_tasks.task(enqueue_on_commit=True)(_echo)
    assert isinstance(on_commit, CronRunnerTask) and on_commit.enqueue_on_commit is True


def _echo(value: str) -> str:
    return value


def test_the_framework_in_use_matches_the_django_version() -> None:
    import django

    assert NATIVE_TASKS is (django.VERSION >= (6, 0))
