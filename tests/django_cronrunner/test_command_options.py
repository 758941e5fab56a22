"""run_due_tasks options that pick the budget, backend and lock; a database failing mid-run.

A database that is down from the start is tested on the real command in tests/e2e.
"""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from pytest_django.fixtures import Settings

from cronrunner.clock import FakeClock
from cronrunner.lock import RunLock
from django_cronrunner.compat import TaskResultStatus, task_started
from django_cronrunner.models import BatchRun, TaskRecord
from django_cronrunner.storage.store import DatabaseTaskStore
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    """Return the lock file conftest's own_lock_file gave the default backend."""
    return tmp_path / "run.lock"


def run(*args: str) -> str:
    out = StringIO()
    call_command("run_due_tasks", *args, stdout=out)
    return out.getvalue()


def test_max_seconds_stops_starting_tasks_once_spent(
    lock_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four task paths: none has a duration history that would keep it from starting.
    tasks.add.enqueue(1, 1)
    tasks.send_email.enqueue("a@example.com")
    tasks.report.enqueue("x")
    tasks.append_line.enqueue("/dev/null", "x")
    clock = FakeClock(datetime.now(UTC))
    monkeypatch.setattr("django_cronrunner.run.runner.SystemClock", lambda: clock)

    def take_three_seconds(sender: Any, **kwargs: Any) -> None:
        clock.advance(3)

    task_started.connect(take_three_seconds)
    try:
        output = run("--max-seconds", "5")
    finally:
        task_started.disconnect(take_three_seconds)
    # 0s: the first task starts; 3s: the second; 6s: the 5s budget is spent.
    assert "batch finished: 2 run" in output
    assert "in 6.0s of a 5s budget; stopped: budget spent" in output
    assert TaskRecord.objects.filter(status="READY").count() == 2
    # Tasks claimed with the batch but never started were handed back, not left RUNNING.
    assert not TaskRecord.objects.filter(status="RUNNING").exists()
    assert BatchRun.objects.get().max_seconds == 5


def test_backend_option_runs_only_that_backends_tasks(
    settings: Settings, lock_path: Path, tmp_path: Path
) -> None:
    settings.TASKS = {
        **settings.TASKS,
        "other": {
            "BACKEND": "django_cronrunner.backend.CronRunnerBackend",
            "OPTIONS": {"lock_file": str(tmp_path / "other.lock")},
        },
    }
    on_default = tasks.add.enqueue(1, 1)
    on_other = tasks.add.using(backend="other").enqueue(2, 2)
    run("--backend", "other")
    assert tasks.add.using(backend="other").get_result(on_other.id).return_value == 4
    assert tasks.add.get_result(on_default.id).status == TaskResultStatus.READY
    assert BatchRun.objects.get().backend_name == "other"


def test_lock_file_option_replaces_the_configured_lock(lock_path: Path, tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.lock"
    with RunLock(lock_path, started_at=datetime.now(UTC)):
        # The configured lock is held, but --lock-file names another, so the run goes ahead.
        assert "batch finished" in run("--lock-file", str(chosen))
    with RunLock(chosen, started_at=datetime(2026, 6, 1, 12, tzinfo=UTC)):
        output = run("--lock-file", str(chosen))
    assert f"batch skipped: Another run holds {chosen}: pid " in output
    assert "since 2026-06-01T12:00:00+00:00" in output
    assert list(BatchRun.objects.order_by("id").values_list("stop_reason", flat=True)) == [
        "drained",
        "lock held",
    ]


def test_a_database_failing_mid_run_loses_nothing(
    lock_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = tasks.add.enqueue(2, 2)

    def database_gone(*args: Any, **kwargs: Any) -> bool:
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patch:
        patch.setattr(DatabaseTaskStore, "finish", database_gone)
        with pytest.raises(CommandError) as caught:
            run()
    assert str(caught.value) == (
        "The database 'default' cannot be used: server closed the connection unexpectedly"
    )
    assert TaskRecord.objects.get().status == "RUNNING"
    # The next run with the same lock knows the task's run is dead and runs it again.
    assert "1 run (1 succeeded, 0 failed), 1 recovered" in run()
    fresh = tasks.add.get_result(result.id)
    assert (fresh.status, fresh.return_value) == (TaskResultStatus.SUCCESSFUL, 4)
    assert len(fresh.worker_ids) == 2
    assert [error.exception_class_path for error in fresh.errors] == [
        "cronrunner.errors.RunnerDied"
    ]


def test_a_queue_the_backend_does_not_allow_is_refused(lock_path: Path) -> None:
    tasks.send_email.enqueue("a@example.com")
    with pytest.raises(CommandError) as caught:
        run("--queue", "emails,emial")
    assert str(caught.value) == (
        "Error: --queue 'emial' is not in TASKS['default']['QUEUES'] "
        "(choose from ['default', 'emails', 'reports'], or *)"
    )
    assert TaskRecord.objects.get().status == "READY"
    assert not BatchRun.objects.exists()


def test_any_queue_name_goes_when_the_backend_allows_every_queue(
    settings: Settings, lock_path: Path
) -> None:
    default = dict(settings.TASKS["default"])
    default["QUEUES"] = []
    settings.TASKS = {**settings.TASKS, "default": default}
    names = [f"tenant-{n:03}-{'x' * 40}" for n in range(12)]
    tasks.add.using(queue_name=names[3]).enqueue(1, 1)
    output = run("--queue", ",".join(names))
    assert "batch finished: 1 run (1 succeeded" in output
    # Twelve long names do not fit the batch log's column; the row is still written.
    recorded = BatchRun.objects.get().queues
    assert recorded.startswith(",".join(sorted(names))[:100]) and len(recorded) == 255
