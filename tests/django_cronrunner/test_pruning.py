"""Pruning finished results and the batch log by retention, by hand and in chunks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from pytest_django.fixtures import Settings

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import task_backends
from django_cronrunner.models import BatchRun, TaskRecord
from django_cronrunner.storage.pruning import prune
from django_cronrunner.storage.retention import Retention
from tests.django_cronrunner.rows import batch_row

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def task_row(status: str, finished_days_ago: float | None, backend: str = "default") -> TaskRecord:
    finished = None if finished_days_ago is None else NOW - timedelta(days=finished_days_ago)
    return TaskRecord.objects.create(
        backend_name=backend,
        task_path="tests.testapp.tasks.add",
        status=status,
        enqueued_at=NOW - timedelta(days=60),
        due_at=NOW - timedelta(days=60),
        finished_at=finished,
    )


def batch_row_finished(days_ago: float) -> BatchRun:
    return batch_row(NOW - timedelta(days=days_ago))


def remaining() -> list[tuple[str, str]]:
    return sorted(TaskRecord.objects.values_list("status", "backend_name"))


def test_default_retention_keeps_recent_and_unfinished_rows() -> None:
    task_row("SUCCESSFUL", 8)
    task_row("SUCCESSFUL", 6)
    task_row("FAILED", 31)
    task_row("FAILED", 8)
    task_row("READY", None)
    task_row("RUNNING", None)
    task_row("SUCCESSFUL", 100, backend="other")
    batch_row_finished(31)
    batch_row_finished(1)
    result = prune(using="default", backend_name="default", retention=Retention(), now=NOW)
    assert (result.successful, result.failed, result.batches, result.finished) == (1, 1, 1, True)
    assert remaining() == [
        ("FAILED", "default"),
        ("READY", "default"),
        ("RUNNING", "default"),
        ("SUCCESSFUL", "default"),
        ("SUCCESSFUL", "other"),
    ]
    assert BatchRun.objects.count() == 1


def test_none_keeps_forever_and_dry_run_deletes_nothing() -> None:
    task_row("SUCCESSFUL", 400)
    task_row("FAILED", 400)
    keep_failures = Retention(failed=None)
    dry = prune(
        using="default", backend_name="default", retention=keep_failures, now=NOW, dry_run=True
    )
    assert (dry.successful, dry.failed) == (1, 0)
    assert TaskRecord.objects.count() == 2
    prune(using="default", backend_name="default", retention=keep_failures, now=NOW)
    assert remaining() == [("FAILED", "default")]


def test_pruning_stops_between_chunks_when_the_budget_is_spent() -> None:
    for _ in range(5):
        task_row("SUCCESSFUL", 10)
    checks = iter([False, False, True])
    result = prune(
        using="default",
        backend_name="default",
        retention=Retention(),
        now=NOW,
        chunk_size=2,
        should_stop=lambda: next(checks),
    )
    assert (result.successful, result.finished) == (4, False)
    assert TaskRecord.objects.count() == 1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"succesful": 3}, "unknown keys ['succesful']"),
        ({"failed": -1}, "'failed'] must be a positive number of days"),
        ({"failed": True}, "must be a positive number of days"),
        ({"batches": "30"}, "must be a positive number of days"),
        ([7, 30], "must be a dict"),
    ],
)
def test_bad_retention_is_refused(raw: object, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message.replace("[", r"\[").replace("]", r"\]")):
        Retention.parse("default", raw)


def test_retention_comes_from_the_backend_options(settings: Settings, tmp_path: Path) -> None:
    default: dict[str, Any] = dict(settings.TASKS["default"])
    default["OPTIONS"] = {"lock_file": str(tmp_path / "l"), "retention": {"successful": 0.5}}
    settings.TASKS = {**settings.TASKS, "default": default}
    backend = task_backends["default"]
    assert isinstance(backend, CronRunnerBackend)
    assert backend.config.retention == Retention(successful=timedelta(hours=12))


def test_command_dry_run_then_prune() -> None:
    task_row("SUCCESSFUL", 3000)
    batch_row_finished(3000)
    out = StringIO()
    call_command("prune_task_results", "--dry-run", stdout=out)
    assert out.getvalue().strip() == (
        "Would delete 1 successful and 0 failed task results and 1 batch log rows."
    )
    assert TaskRecord.objects.count() == 1
    out = StringIO()
    call_command("prune_task_results", stdout=out)
    assert out.getvalue().startswith("Deleted 1 successful")
    assert TaskRecord.objects.count() == 0 and BatchRun.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_drained_run_prunes_at_most_once_an_hour(tmp_path: Path) -> None:
    from cronrunner.clock import FakeClock
    from django_cronrunner.run.runner import run_due_tasks

    clock = FakeClock(NOW)
    task_row("SUCCESSFUL", 8)
    run_due_tasks(clock=clock, lock_file=tmp_path / "run.lock")
    assert TaskRecord.objects.count() == 0
    assert (tmp_path / "run.pruned").exists()
    task_row("SUCCESSFUL", 8)
    clock.advance(59 * 60)
    run_due_tasks(clock=clock, lock_file=tmp_path / "run.lock")
    assert TaskRecord.objects.count() == 1  # pruned less than an hour ago
    clock.advance(60)
    run_due_tasks(clock=clock, lock_file=tmp_path / "run.lock")
    assert TaskRecord.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_run_stopped_by_its_limits_does_not_prune(tmp_path: Path) -> None:
    from cronrunner.clock import FakeClock
    from django_cronrunner.run.runner import run_due_tasks

    old = task_row("SUCCESSFUL", 8)
    ready = task_row("READY", None)
    TaskRecord.objects.filter(pk=ready.pk).update(args=[1, 2])
    summary = run_due_tasks(clock=FakeClock(NOW), lock_file=tmp_path / "run.lock", max_tasks=1)
    assert summary.stop_reason == "max tasks"
    assert TaskRecord.objects.get(pk=ready.pk).status == "SUCCESSFUL"
    assert TaskRecord.objects.filter(pk=old.pk).exists()
    assert not (tmp_path / "run.pruned").exists()


@pytest.mark.django_db(transaction=True)
def test_a_pruning_failure_does_not_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from django.db import OperationalError

    from cronrunner.clock import FakeClock
    from django_cronrunner.run.runner import run_due_tasks
    from django_cronrunner.storage import pruning

    def broken(**kwargs: Any) -> None:
        raise OperationalError("lost connection during pruning")

    monkeypatch.setattr(pruning, "prune", broken)
    summary = run_due_tasks(clock=FakeClock(NOW), lock_file=tmp_path / "run.lock")
    assert summary.stop_reason == "drained"
    assert "Pruning old task results failed." in caplog.text
