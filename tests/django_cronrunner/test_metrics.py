"""Prometheus metrics from the database: the textfile a batch writes and the metrics view."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from pytest_django.fixtures import Settings

from django_cronrunner.compat import task_backends
from django_cronrunner.models import TaskDuration, TaskRecord
from django_cronrunner.operations import metrics
from django_cronrunner.run.runner import run_due_tasks
from tests.django_cronrunner.rows import batch_row
from tests.testapp.tasks import add, fail, send_email

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.trigger_urls")]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse exposition text with prometheus_client's own parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_batch_writes_the_textfile_atomically(settings: Settings, tmp_path: Path) -> None:
    textfile = tmp_path / "cronrunner.prom"
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {
        "lock_file": str(tmp_path / "run.lock"),
        "monitoring": {"textfile": str(textfile)},
    }
    settings.TASKS = {**settings.TASKS, "default": default}
    add.enqueue(1, 2)
    fail.enqueue("boom")
    send_email.using(run_after=timezone.now() + timedelta(hours=1)).enqueue("a@example.com")
    run_due_tasks(max_seconds=20)
    found = samples(textfile.read_text())
    assert list(tmp_path.glob("*.prom.*")) == []  # the temporary file was renamed over it
    d = (("backend", "default"),)
    assert found[("cronrunner_last_batch_tasks_run", d)] == 2
    assert found[("cronrunner_last_batch_tasks_failed", d)] == 1
    assert found[("cronrunner_last_batch_budget_seconds", d)] == 20
    assert 0 <= found[("cronrunner_last_batch_budget_used_ratio", d)] < 1
    assert found[("cronrunner_last_batch_timestamp_seconds", d)] == pytest.approx(
        timezone.now().timestamp(), abs=30
    )
    assert found[("cronrunner_queue_deferred_tasks", (*d, ("queue", "emails")))] == 1
    assert found[("cronrunner_queue_due_tasks", (*d, ("queue", "emails")))] == 0
    assert found[("cronrunner_oldest_due_age_seconds", d)] == 0
    by_path = "cronrunner_tasks_finished_last_hour"
    assert found[(by_path, (*d, ("status", "SUCCESSFUL"), ("task_path", add.module_path)))] == 1
    assert found[(by_path, (*d, ("status", "FAILED"), ("task_path", fail.module_path)))] == 1
    assert (("cronrunner_task_duration_p95_seconds", (*d, ("task_path", add.module_path)))) in found


def crafted_history() -> None:
    now = timezone.now()
    batch_row(now - timedelta(seconds=30), stop_reason="budget spent", tasks_run=7, failed=2)
    record = add.enqueue(1, 2)
    TaskRecord.objects.filter(pk=record.id).update(due_at=now - timedelta(seconds=90))
    TaskDuration.objects.create(
        backend_name="default", task_path="shop.tasks.export", samples=[1.0] * 18 + [80.0, 80.0]
    )


def test_the_view_serves_the_same_metrics_to_a_token(settings: Settings) -> None:
    settings.CRONRUNNER_METRICS_TOKEN = "s3cret"
    crafted_history()
    response = Client().get("/cron/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    found = samples(response.content.decode())
    d = (("backend", "default"),)
    assert found[("cronrunner_last_batch_tasks_run", d)] == 7
    assert found[("cronrunner_last_batch_duration_seconds", d)] == 3
    assert found[("cronrunner_queue_due_tasks", (*d, ("queue", "default")))] == 1
    assert found[("cronrunner_oldest_due_age_seconds", d)] == pytest.approx(90, abs=10)
    p95 = ("cronrunner_task_duration_p95_seconds", (*d, ("task_path", "shop.tasks.export")))
    assert found[p95] == 80.0
    # Only CronRunnerBackends are served: the immediate backend has no metrics.
    assert "immediate" in task_backends and not any(
        ("backend", "immediate") in labels for _, labels in found
    )


def test_the_view_refuses_anyone_else(settings: Settings) -> None:
    settings.CRONRUNNER_METRICS_TOKEN = "s3cret"
    client = Client()
    assert client.get("/cron/metrics").status_code == 401
    assert client.get("/cron/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.post("/cron/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 405
    client.force_login(User.objects.create_user("clerk", password="x"))
    assert client.get("/cron/metrics").status_code == 401
    settings.CRONRUNNER_METRICS_TOKEN = None
    assert Client().get("/cron/metrics", HTTP_AUTHORIZATION="Bearer None").status_code == 401


def test_staff_may_read_the_view() -> None:
    client = Client()
    client.force_login(User.objects.create_user("ops", password="x", is_staff=True))
    response = client.get("/cron/metrics")
    assert response.status_code == 200
    assert (
        samples(response.content.decode())[
            ("cronrunner_oldest_due_age_seconds", (("backend", "default"),))
        ]
        == 0
    )


def test_runs_that_found_the_lock_held_are_not_the_last_batch(
    settings: Settings, tmp_path: Path
) -> None:
    # A run has held the lock for 40 minutes; cron's later starts each recorded a skip.
    settings.CRONRUNNER_METRICS_TOKEN = "s3cret"
    now = timezone.now()
    batch_row(now - timedelta(minutes=40), stop_reason="budget spent", tasks_run=7)
    for minutes in (39, 20, 1):
        batch_row(now - timedelta(minutes=minutes), stop_reason="lock held")
    textfile = tmp_path / "cronrunner.prom"
    metrics.write_textfile(task_backends["default"], textfile, now)
    view = Client().get("/cron/metrics", HTTP_AUTHORIZATION="Bearer s3cret").content.decode()
    d = (("backend", "default"),)
    for found in (samples(textfile.read_text()), samples(view)):
        assert found[("cronrunner_last_batch_timestamp_seconds", d)] == pytest.approx(
            (now - timedelta(minutes=40)).timestamp()
        )
        assert found[("cronrunner_last_batch_tasks_run", d)] == 7
        assert found[("cronrunner_last_lock_held_timestamp_seconds", d)] == pytest.approx(
            (now - timedelta(minutes=1)).timestamp()
        )


def test_the_view_measures_at_the_databases_time(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database's clock is two hours ahead of this host's.
    settings.CRONRUNNER_METRICS_TOKEN = "s3cret"
    crafted_history()
    ahead = timezone.now() + timedelta(hours=2)
    monkeypatch.setattr(metrics, "database_now", lambda using: ahead)
    response = Client().get("/cron/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    wait = samples(response.content.decode())[
        ("cronrunner_oldest_due_age_seconds", (("backend", "default"),))
    ]
    assert wait == pytest.approx(2 * 3600 + 90, abs=10)


def test_a_textfile_without_prometheus_client_is_a_check_error_and_skipped(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    textfile = tmp_path / "cronrunner.prom"
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {
        "lock_file": str(tmp_path / "run.lock"),
        "monitoring": {"textfile": str(textfile)},
    }
    settings.TASKS = {**settings.TASKS, "default": default}
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    add.enqueue(1, 2)
    with caplog.at_level(logging.WARNING, logger="django_cronrunner"):
        assert run_due_tasks(max_seconds=20).succeeded == 1
    assert not textfile.exists()
    [warning] = [record.getMessage() for record in caplog.records]
    assert "['textfile'] is set but prometheus_client is not installed" in warning
    [error] = [message for message in run_checks() if message.id == "django_cronrunner.E031"]
    assert error.hint == "pip install 'django-cronrunner[prometheus]'"
