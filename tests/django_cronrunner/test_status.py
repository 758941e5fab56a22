"""What operators see of schedules: cronrunner_status and the schedule admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.tasks import task_backends
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.models import ScheduleState
from django_cronrunner.scheduling import fire_due_slots
from django_cronrunner.status import schedule_statuses

pytestmark = pytest.mark.django_db

NIGHTLY = {
    "task": "tests.testapp.tasks.add",
    "cron": "30 2 * * *",
    "timezone": "America/New_York",
    "args": [1, 2],
}
MINUTELY = {"task": "tests.testapp.tasks.add", "cron": "* * * * *", "args": [1, 2]}


def with_schedules(settings: Settings, tmp_path: Path, **schedules: object) -> dict[str, Any]:
    """Return TASKS with the default backend's schedules replaced."""
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {"lock_file": str(tmp_path / "run.lock"), "schedules": schedules}
    return {**settings.TASKS, "default": default}


@pytest.fixture
def backend(settings: Settings, tmp_path: Path) -> CronRunnerBackend:
    settings.TASKS = with_schedules(
        settings,
        tmp_path,
        nightly=NIGHTLY,
        minutely=MINUTELY,
        broken={"task": "tests.testapp.tasks.add", "cron": "every day"},
    )
    configured = task_backends["default"]
    assert isinstance(configured, CronRunnerBackend)
    return configured


def status_output() -> str:
    out = StringIO()
    call_command("cronrunner_status", stdout=out)
    return out.getvalue()


def test_status_lists_every_schedule_with_next_slots(backend: CronRunnerBackend) -> None:
    output = status_output()
    assert "broken: INVALID: Schedule 'broken'" in output
    assert "nightly: '30 2 * * *' in America/New_York, catch-up latest, enabled" in output
    assert "last slot fired: never" in output
    nightly = output[output.index("nightly:") :]
    next_lines = [line for line in nightly.splitlines() if line.startswith("  next:")][:3]
    assert len(next_lines) == 3
    assert all("02:30 E" in line and "UTC)" in line for line in next_lines)
    assert "OVERDUE" not in output


def test_status_flags_a_schedule_no_run_has_handled(backend: CronRunnerBackend) -> None:
    fire_due_slots(backend, timezone.now() - timedelta(minutes=10))
    output = status_output()
    minutely = output[output.index("minutely:") : output.index("nightly:")]
    assert "OVERDUE: the slot" in minutely
    assert "is run_due_tasks running from cron?" in minutely
    fire_due_slots(backend, timezone.now())
    assert "OVERDUE" not in status_output()


def test_statuses_report_last_slot_and_pause(backend: CronRunnerBackend) -> None:
    start = datetime(2026, 6, 1, 8, tzinfo=UTC)
    fire_due_slots(backend, start)
    fire_due_slots(backend, start + timedelta(minutes=3, seconds=5))
    ScheduleState.objects.filter(name="nightly").update(paused=True)
    statuses = {status.name: status for status in schedule_statuses(backend, start)}
    assert statuses["minutely"].last_slot == start + timedelta(minutes=3)
    assert statuses["nightly"].paused
    assert statuses["broken"].error is not None
    assert statuses["minutely"].next_slots == [start + timedelta(minutes=n) for n in (1, 2, 3)]


def test_status_with_no_schedules(settings: Settings, tmp_path: Path) -> None:
    settings.TASKS = with_schedules(settings, tmp_path)
    assert status_output().strip() == "No schedules are declared."


@pytest.fixture
def admin_client_for(db: None) -> Client:
    user = User.objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_schedule_admin_shows_next_slot_and_pauses(
    backend: CronRunnerBackend, admin_client_for: Client
) -> None:
    fire_due_slots(backend, timezone.now() - timedelta(minutes=10))
    ScheduleState.objects.create(
        backend_name="gone",
        name="old-report",
        expression="0 1 * * *",
        timezone="UTC",
        checked_until=timezone.now(),
        created_at=timezone.now(),
    )
    page = admin_client_for.get("/admin/django_cronrunner/schedulestate/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "minutely" in html and "nightly" in html
    assert "not declared any more" in html
    assert "02:30 E" in html
    ids = list(ScheduleState.objects.filter(name="minutely").values_list("pk", flat=True))
    response = admin_client_for.post(
        "/admin/django_cronrunner/schedulestate/",
        {"action": "pause", "_selected_action": ids},
        follow=True,
    )
    assert "Paused 1 schedule(s)" in response.content.decode()
    assert ScheduleState.objects.get(name="minutely").paused
    admin_client_for.post(
        "/admin/django_cronrunner/schedulestate/", {"action": "resume", "_selected_action": ids}
    )
    assert not ScheduleState.objects.get(name="minutely").paused
