"""Asking the database whether a running task was asked to stop: a database that fails or hangs
while a task runs neither fails the task nor delays its timeout."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import OperationalError, connection

from cronrunner.store import Outcome, Status
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import task_backends
from django_cronrunner.models import TaskRecord, TaskRecordQuerySet
from django_cronrunner.run.execution import TaskExecutor
from django_cronrunner.run.isolation import TIMED_OUT_PATH
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.task import task
from tests.django_cronrunner.rows import task_store
from tests.e2e.conftest import subprocess_env
from tests.e2e.test_timeouts import alive
from tests.testapp import tasks
from tests.testapp.db_faults import backend_id, end_connections

pytestmark = pytest.mark.django_db(transaction=True)


@task(max_attempts=2, retry_backoff="fixed", retry_delay=0)
def drop_connection_then_fail() -> None:
    """Have the server end this thread's connection, then fail, so that a retry is due."""
    end_connections(only=backend_id(connection))
    raise ValueError("failed after its connection was dropped")


@pytest.fixture
def executor(monkeypatch: pytest.MonkeyPatch) -> Iterator[TaskExecutor]:
    """Return an executor whose child process uses this test's database."""
    for name, value in subprocess_env().items():
        monkeypatch.setenv(name, value)
    backend = task_backends["default"]
    assert isinstance(backend, CronRunnerBackend)
    executor = TaskExecutor(backend)
    yield executor
    executor.close()


def run_one(executor: TaskExecutor, result_id: str) -> tuple[float, Outcome]:
    """Claim, start and run the one due task; return the seconds it took and its outcome."""
    store = task_store()
    now = TaskRecord.objects.get(pk=result_id).due_at
    (claimed,) = store.claim(now, 1)
    assert store.start(claimed, now)
    started = time.monotonic()
    outcome = executor.run(claimed)
    return time.monotonic() - started, outcome


def test_a_question_the_database_fails_to_answer_neither_kills_the_task_nor_ends_the_run(
    executor: TaskExecutor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    asked = 0

    def unreachable(self: TaskRecordQuerySet) -> bool:
        nonlocal asked
        asked += 1
        raise OperationalError("server closed the connection unexpectedly")

    result = tasks.sleep_in_child.enqueue(str(tmp_path / "pid"), 2)
    monkeypatch.setattr(TaskRecordQuerySet, "exists", unreachable)
    with caplog.at_level(logging.WARNING, logger="django_cronrunner"):
        _, outcome = run_one(executor, result.id)
    assert outcome.failure is None, outcome
    assert asked >= 4  # two questions, each asked again on a new connection
    warnings = [r for r in caplog.records if "could not say whether task" in r.getMessage()]
    assert len(warnings) == 1
    assert "server closed the connection unexpectedly" in warnings[0].getMessage()


def test_a_question_that_hangs_does_not_delay_the_timeout(
    executor: TaskExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = threading.Event()

    def hanging(self: TaskRecordQuerySet) -> bool:
        answer.wait(30)  # a cut link: no answer until the test ends
        return False

    marker = tmp_path / "pid"
    result = tasks.spin.enqueue(str(marker))  # timeout=1
    monkeypatch.setattr(TaskRecordQuerySet, "exists", hanging)
    try:
        seconds, outcome = run_one(executor, result.id)
    finally:
        answer.set()
    assert outcome.failure is not None
    assert outcome.failure.exception_class_path == TIMED_OUT_PATH
    # The child's start-up (not counted in the timeout) and the one second of the timeout.
    assert seconds < 10
    assert not alive(int(marker.read_text()))


@pytest.mark.skipif(connection.vendor == "sqlite", reason="a SQLite connection cannot be cut")
def test_a_task_that_fails_after_its_connection_dropped_is_retried_and_the_run_goes_on() -> None:
    result = drop_connection_then_fail.enqueue()
    for _ in range(2):  # the retry is due at once: one run may make both attempts
        run_due_tasks(max_seconds=10)
    record = TaskRecord.objects.get(pk=result.id)
    assert (record.status, record.attempts) == (Status.FAILED, 2)
    assert all(error["exception_class_path"] == "builtins.ValueError" for error in record.errors)
