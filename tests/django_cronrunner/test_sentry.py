"""Sentry Crons check-ins through the real sentry_sdk, sent to a local fake Sentry."""

from __future__ import annotations

import gzip
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from django.core.checks import run_checks
from django.db import OperationalError, connections
from django.utils import timezone
from pytest_django.fixtures import Settings

from cronrunner.errors import StorageUnavailable
from django_cronrunner.compat import task_backends
from django_cronrunner.operations.sentry import monitor_slug
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.scheduling.schedules import fire_due_slots
from tests.django_cronrunner.fake_http import FakeService, fake_service
from tests.testapp.tasks import add, fail

pytestmark = pytest.mark.django_db


@pytest.fixture
def sentry() -> Iterator[FakeService]:
    with fake_service() as service:
        yield service
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def items(service: FakeService) -> list[tuple[str, dict[str, Any]]]:
    """Return the (type, payload) of each item of every envelope the fake Sentry received."""
    found = []
    for request in service.requests:
        assert request.path == "/api/1/envelope/"
        body = request.body
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            found.append((json.loads(header).get("type"), json.loads(payload)))
    return found


def check_ins(service: FakeService) -> list[dict[str, Any]]:
    """Return the check-in items of every envelope the fake Sentry received."""
    return [payload for kind, payload in items(service) if kind == "check_in"]


def configure(settings: Settings, tmp_path: Path, sentry: dict[str, Any], **options: Any) -> None:
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {
        "lock_file": str(tmp_path / "run.lock"),
        "monitoring": {"sentry": sentry},
        **options,
    }
    settings.TASKS = {**settings.TASKS, "default": default}


def test_each_batch_checks_the_runner_in_and_upserts_its_monitor(
    settings: Settings, tmp_path: Path, sentry: FakeService
) -> None:
    configure(settings, tmp_path, {"dsn": f"http://public@{sentry.url[7:]}/1", "monitor": "shop"})
    add.enqueue(1, 2)
    run_due_tasks(max_seconds=30)
    started, finished = check_ins(sentry)
    assert started["monitor_slug"] == finished["monitor_slug"] == "shop"
    assert started["status"] == "in_progress"
    assert started["monitor_config"] == {
        "schedule": {"type": "crontab", "value": "* * * * *"},
        "timezone": "UTC",
        "checkin_margin": 2,
        "max_runtime": 2,
    }
    assert finished["status"] == "ok"
    assert finished["check_in_id"] == started["check_in_id"]
    assert finished["duration"] >= 0


def test_a_failed_task_checks_the_runner_in_as_an_error(
    settings: Settings, tmp_path: Path, sentry: FakeService
) -> None:
    configure(settings, tmp_path, {"dsn": f"http://public@{sentry.url[7:]}/1"})
    fail.enqueue("boom")
    run_due_tasks(max_seconds=30)
    assert [(c["monitor_slug"], c["status"]) for c in check_ins(sentry)] == [
        ("cronrunner-default", "in_progress"),
        ("cronrunner-default", "error"),
    ]


def test_each_schedule_gets_its_own_monitor_with_crontab_and_zone(
    settings: Settings, tmp_path: Path, sentry: FakeService
) -> None:
    configure(
        settings,
        tmp_path,
        {"dsn": f"http://public@{sentry.url[7:]}/1", "schedules": True},
        schedules={
            "Nightly Report": {
                "task": "tests.testapp.tasks.add",
                "cron": "30 2 * * *",
                "timezone": "America/New_York",
                "args": [1, 2],
            }
        },
    )
    backend = task_backends["default"]
    fire_due_slots(backend, timezone.now())  # starts tracking: no slot yet
    # The slot of 02:30 New York time is made due by hand, as a run at that minute would.
    from django_cronrunner.models import ScheduleState

    ScheduleState.objects.update(checked_until=timezone.now() - timezone.timedelta(days=1))
    run_due_tasks(max_seconds=30)
    items = check_ins(sentry)
    scheduled = [c for c in items if c["monitor_slug"] == "nightly-report"]
    assert len(scheduled) == 1
    assert scheduled[0]["status"] == "ok"
    assert scheduled[0]["monitor_config"]["schedule"] == {"type": "crontab", "value": "30 2 * * *"}
    assert scheduled[0]["monitor_config"]["timezone"] == "America/New_York"


def test_slugs_are_what_sentry_accepts() -> None:
    assert monitor_slug("Nightly Report (EU)") == "nightly-report-eu"
    assert len(monitor_slug("x" * 80)) == 50


def test_an_unreachable_sentry_never_fails_the_batch(
    settings: Settings, tmp_path: Path, sentry: FakeService
) -> None:
    configure(settings, tmp_path, {"dsn": "http://public@127.0.0.1:9/1", "timeout": 0.5})
    add.enqueue(1, 2)
    assert run_due_tasks(max_seconds=30).succeeded == 1


def test_the_dsn_option_sends_check_ins_and_reports_no_error(
    settings: Settings, tmp_path: Path, sentry: FakeService
) -> None:
    configure(settings, tmp_path, {"dsn": f"http://public@{sentry.url[7:]}/1"})
    fail.enqueue("boom")
    run_due_tasks(max_seconds=30)
    logging.getLogger("django_cronrunner").error("an error of the site's own")
    sentry_sdk.flush(timeout=5)
    # Default integrations would have sent the failed task's log line and this one as events.
    assert [kind for kind, _ in items(sentry)] == ["check_in", "check_in"]
    assert sentry_sdk.get_client().integrations == {}


def test_a_run_whose_database_is_down_checks_the_runner_in_as_an_error(
    settings: Settings, tmp_path: Path, sentry: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> None:
        raise OperationalError("unable to open database file")

    monkeypatch.setattr(connections["default"], "ensure_connection", refuse)
    configure(settings, tmp_path, {"dsn": f"http://public@{sentry.url[7:]}/1", "monitor": "shop"})
    with pytest.raises(StorageUnavailable):
        run_due_tasks(max_seconds=30)
    [failed] = check_ins(sentry)
    assert (failed["monitor_slug"], failed["status"]) == ("shop", "error")
    assert failed["monitor_config"]["schedule"] == {"type": "crontab", "value": "* * * * *"}


def without_sentry_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sentry_sdk unimportable, as on a site without the `sentry` extra."""
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    monkeypatch.delitem(sys.modules, "django_cronrunner.operations.sentry")


def test_sentry_set_without_sentry_sdk_runs_the_tasks_and_warns_once(
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure(settings, tmp_path, {"monitor": "shop"})
    without_sentry_sdk(monkeypatch)
    add.enqueue(1, 2)
    with caplog.at_level(logging.WARNING, logger="django_cronrunner"):
        assert run_due_tasks(max_seconds=30).succeeded == 1
    assert [record.getMessage() for record in caplog.records] == [
        "TASKS['default']['OPTIONS']['monitoring']['sentry'] is set but sentry_sdk is not "
        "installed (pip install 'django-cronrunner[sentry]'); the batch runs without it."
    ]
    [error] = [message for message in run_checks() if message.id == "django_cronrunner.E030"]
    assert "sentry_sdk is not installed" in error.msg
    assert error.hint == "pip install 'django-cronrunner[sentry]'"


def test_schedules_that_share_a_monitor_slug_are_a_check_error(
    settings: Settings, tmp_path: Path
) -> None:
    declaration = {"task": "tests.testapp.tasks.add", "cron": "0 3 * * *", "args": [1, 2]}
    configure(
        settings,
        tmp_path,
        {"monitor": "weekly", "schedules": True},
        schedules={
            "Nightly Report": declaration,
            "nightly-report": declaration,
            "Weekly": declaration,
            "hourly": declaration,
        },
    )
    errors = [message for message in run_checks() if message.id == "django_cronrunner.E032"]
    assert [error.msg for error in errors] == [
        "TASKS['default']['OPTIONS']['monitoring']['sentry']: schedule 'Nightly Report' and "
        "schedule 'nightly-report' would check in on the same Sentry monitor, "
        "'nightly-report'.",
        "TASKS['default']['OPTIONS']['monitoring']['sentry']: schedule 'Weekly' and the runner "
        "would check in on the same Sentry monitor, 'weekly'.",
    ]
    configure(settings, tmp_path, {"monitor": "weekly"}, schedules={"Weekly": declaration})
    assert not [message for message in run_checks() if message.id == "django_cronrunner.E032"]
