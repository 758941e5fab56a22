"""The HTTP trigger's budget never outruns the request timeout the platform enforces."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from django.core import checks
from django.test import Client
from pytest_django.fixtures import Settings

from cronrunner.store import BatchSummary
from django_cronrunner.models import TaskDuration, TaskRecord
from django_cronrunner.trigger_options import TriggerSettings, check_trigger
from django_cronrunner.web.trigger import too_long_for
from tests.testapp import tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.trigger_urls")]

SECRET = "tR1gg3r-Kq8vZ0pYwX4mN7bL2cD5fG9hJ3sA6eU"
PINGS = {"checkins": {"url": "https://hc-ping.com/x", "timeout": 4}}
SENTRY = {"sentry": {"monitor": "m", "dsn": "https://k@o1.ingest.sentry.io/1", "timeout": 3}}


@pytest.fixture(autouse=True)
def trigger_settings(settings: Settings) -> Settings:
    settings.CRONRUNNER_TRIGGER_SECRET = SECRET
    return settings


def with_monitoring(settings: Settings, monitoring: dict[str, object]) -> None:
    default = settings.TASKS["default"]
    options = {**default["OPTIONS"], "monitoring": monitoring}
    settings.TASKS = {**settings.TASKS, "default": {**default, "OPTIONS": options}}


def test_the_default_budget_is_the_longest_that_fits_the_request_timeout(
    settings: Settings,
) -> None:
    # gunicorn's default --timeout, less 5 s to end the last task and the batch.
    assert (TriggerSettings.load().request_timeout, TriggerSettings.load().max_seconds) == (30, 25)
    settings.CRONRUNNER_TRIGGER_REQUEST_TIMEOUT = 120
    assert TriggerSettings.load().max_seconds == 115
    # The end of a batch waits for its last check-in ping and Sentry's flush too.
    with_monitoring(settings, {**PINGS, **SENTRY})
    assert TriggerSettings.load().max_seconds == 120 - 5 - 4 - 3
    assert check_trigger() == []


@pytest.mark.parametrize(
    ("timeout", "budget", "monitoring", "message"),
    [
        (None, 26, {}, "CRONRUNNER_TRIGGER_MAX_SECONDS (26s) plus what a call needs"),
        (None, 25, PINGS, "5s to end the last task and the batch, 4s for the last check-in ping"),
        (None, 25, SENTRY, "3s for Sentry's flush) is more than"),
        (10, 20, {}, "CRONRUNNER_TRIGGER_REQUEST_TIMEOUT (10s)"),
        (5, None, {}, "CRONRUNNER_TRIGGER_REQUEST_TIMEOUT (5s) leaves no time for a batch"),
        (8, None, PINGS, "a call needs 9s past its budget"),
    ],
)
def test_a_budget_past_the_request_timeout_is_a_check_error(
    settings: Settings,
    timeout: float | None,
    budget: float | None,
    monitoring: dict[str, object],
    message: str,
) -> None:
    settings.CRONRUNNER_TRIGGER_REQUEST_TIMEOUT = timeout
    settings.CRONRUNNER_TRIGGER_MAX_SECONDS = budget
    with_monitoring(settings, monitoring)
    (error,) = check_trigger()
    assert error.id == "django_cronrunner.E022" and error.level == checks.ERROR
    assert message in error.msg, error.msg
    assert "gunicorn --timeout" in error.hint
    assert error in checks.run_checks()


@pytest.mark.parametrize("value", ["30", 0, -1, True, float("inf")])
def test_a_request_timeout_that_is_no_number_of_seconds_is_e020(
    settings: Settings, value: object
) -> None:
    settings.CRONRUNNER_TRIGGER_REQUEST_TIMEOUT = value
    (error,) = check_trigger()
    assert error.id == "django_cronrunner.E020"
    assert "CRONRUNNER_TRIGGER_REQUEST_TIMEOUT must be a positive number" in error.msg


def test_a_backend_alias_tasks_lacks_is_e023(settings: Settings) -> None:
    settings.CRONRUNNER_TRIGGER_BACKEND = "nightly"
    (error,) = check_trigger()
    assert error.id == "django_cronrunner.E023" and "'nightly'" in error.msg
    settings.CRONRUNNER_TRIGGER_BACKEND = "default"
    assert check_trigger() == []


def test_a_task_longer_than_the_budget_is_never_started_by_the_trigger(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CRONRUNNER_TRIGGER_MAX_SECONDS = 5
    path = "tests.testapp.tasks.append_line"
    # Cron's runs measured it: 40 s at the 95th percentile, longer than any call may last.
    TaskDuration.objects.create(backend_name="default", task_path=path, samples=[40.0] * 5)
    long = tasks.append_line.enqueue("/dev/null", "long")
    long_record = TaskRecord.objects.get()
    with caplog.at_level(logging.INFO):
        response = Client().post("/cron/trigger/", headers={"X-Cronrunner-Key": SECRET})
    body = response.json()
    assert response.status_code == 200
    assert (body["ran"], body["too_long"], body["backlog"]) == (0, [path], 1)
    assert body["stopped"] == "budget spent"
    long.refresh()
    long_record.refresh_from_db()
    # Left as it was: never started, so never killed mid-run by the request's timeout.
    assert long.status == "READY" and long_record.worker_ids == []
    assert (
        f"Trigger: {path} typically take longer than the trigger's 5s budget, so no call starts "
        "them: run them from cron, a timer or a CronJob (run_due_tasks)."
    ) in caplog.messages
    # A quicker task goes on running beside it.
    tasks.add.enqueue(1, 2)
    body = Client().post("/cron/trigger/", headers={"X-Cronrunner-Key": SECRET}).json()
    assert (body["ran"], body["too_long"]) == (1, [path])


def test_only_tasks_longer_than_the_whole_budget_are_too_long_for_the_trigger() -> None:
    summary = BatchSummary("w", "h", 1, datetime(2026, 1, 1, tzinfo=UTC), 10.0, None, None)
    # b fits a call of its own; it was only late in this one.
    summary.too_long = {"a": 30.0, "b": 3.0, "c": 10.0}
    assert too_long_for(summary) == ["a"]
