"""What operators see of schedules: cronrunner_status and the schedule admin."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import task_backends
from django_cronrunner.models import BatchRun, ScheduleState, TaskRecord
from django_cronrunner.operations.status import schedule_statuses
from django_cronrunner.scheduling.schedules import fire_due_slots
from django_cronrunner.web.dashboard import dashboard
from tests.django_cronrunner.rows import batch_row
from tests.testapp.tasks import add, send_email

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
    assert "No schedules are declared." in status_output()


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


def run_status(*args: str) -> tuple[int, str, str]:
    """Run cronrunner_status; return its exit code, stdout and stderr."""
    out, err = StringIO(), StringIO()
    try:
        call_command("cronrunner_status", *args, stdout=out, stderr=err)
    except SystemExit as e:
        return int(e.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def record_batch(finished_ago: timedelta, stop_reason: str = "drained", **counts: Any) -> BatchRun:
    return batch_row(timezone.now() - finished_ago, stop_reason, **counts)


def test_backlog_per_queue_and_last_batch(settings: Settings, tmp_path: Path) -> None:
    settings.TASKS = with_schedules(settings, tmp_path)
    add.enqueue(1, 2)
    add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 2)
    send_email.enqueue("a@example.com")
    record_batch(timedelta(seconds=30), tasks_run=4, failed=1)
    code, output, _ = run_status()
    assert code == 0
    assert "queue default: 1 due, 1 deferred, 0 running" in output
    assert "queue emails: 1 due, 0 deferred, 0 running" in output
    assert "4 run, 1 failed, 3.0s of 50s; stopped: drained" in output


def test_check_passes_when_batches_run_and_nothing_waits(
    settings: Settings, tmp_path: Path
) -> None:
    settings.TASKS = with_schedules(settings, tmp_path)
    record_batch(timedelta(seconds=30))
    code, output, err = run_status("--check")
    assert (code, err) == (0, "")
    assert "OK: no problems found." in output


def test_check_fails_when_no_batch_ever_ran(settings: Settings, tmp_path: Path) -> None:
    settings.TASKS = with_schedules(settings, tmp_path)
    code, _, err = run_status("--check")
    assert code == 1
    assert err.strip() == (
        "PROBLEM: no batch has ever run: is run_due_tasks in cron or a systemd timer?"
    )


def test_check_names_silence_waiting_and_failures(settings: Settings, tmp_path: Path) -> None:
    settings.TASKS = with_schedules(settings, tmp_path)
    # Twenty seconds past each minute: the database's time a process carries may lag a little.
    record_batch(timedelta(minutes=12, seconds=20))
    add.using(run_after=timezone.now() - timedelta(minutes=20, seconds=20)).enqueue(1, 2)
    TaskRecord.objects.bulk_create(
        TaskRecord(
            backend_name="default",
            task_path="tests.testapp.tasks.fail",
            status="FAILED",
            enqueued_at=timezone.now(),
            due_at=timezone.now(),
            finished_at=timezone.now() - timedelta(minutes=5),
        )
        for _ in range(3)
    )
    code, _, err = run_status("--check", "--max-silence", "10", "--max-failures", "2")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("PROBLEM: no batch has run for 12 minutes (limit 10 minutes)")
    assert lines[1].startswith("PROBLEM: the oldest due task has waited 20 minutes")
    assert lines[2] == "PROBLEM: 3 tasks failed in the last hour (limit 2)"
    assert run_status("--check", "--max-silence", "15", "--max-wait", "30")[0] == 0


def test_json_output_for_machines(backend: CronRunnerBackend) -> None:
    record_batch(timedelta(minutes=1), tasks_run=2)
    add.enqueue(1, 2)
    code, output, _ = run_status("--json", "--check")
    document = json.loads(output)
    # The fixture's broken schedule is the one problem.
    assert code == 1
    assert document["backend"] == "default"
    assert document["queues"] == [{"queue_name": "default", "due": 1, "deferred": 0, "running": 0}]
    assert document["last_batch"]["tasks_run"] == 2
    assert document["problems"] == [
        "invalid schedule, it never fires: Schedule 'broken': "
        + document["schedules"][0]["error"].split(": ", 1)[1]
    ]
    names = [schedule["name"] for schedule in document["schedules"]]
    assert names == ["broken", "minutely", "nightly"]
    nightly = document["schedules"][2]
    assert len(nightly["next_slots"]) == 3 and nightly["error"] is None


@pytest.mark.parametrize(
    ("declaration", "problem"),
    [
        (
            {"task": "tests.testapp.tasks.add", "cron": "61 * * * *"},
            "PROBLEM: invalid schedule, it never fires: Schedule 'bad': ",
        ),
        (
            {"task": "tests.testapp.tasks.add", "cron": "@daily", "timezone": "Mars/Olympus"},
            "PROBLEM: invalid schedule, it never fires: Schedule 'bad': ",
        ),
        (
            {"task": "tests.testapp.gone.add", "cron": "@daily"},
            "PROBLEM: invalid schedule, it never fires: Schedule 'bad': The task path "
            "'tests.testapp.gone.add' no longer imports",
        ),
    ],
    ids=["cron expression", "time zone", "task path"],
)
def test_an_invalid_schedule_is_a_problem_for_check_and_the_dashboard(
    settings: Settings, tmp_path: Path, declaration: dict[str, str], problem: str
) -> None:
    settings.TASKS = with_schedules(settings, tmp_path, bad=declaration)
    record_batch(timedelta(seconds=10))
    code, output, err = run_status("--check")
    assert code == 1
    assert "OK: no problems found." not in output
    (line,) = err.strip().splitlines()
    assert line.startswith(problem), line
    shown = dashboard(task_backends["default"], timezone.now())["problems"]
    assert shown == [line.removeprefix("PROBLEM: ")]


def test_overdue_schedule_is_a_problem(backend: CronRunnerBackend) -> None:
    record_batch(timedelta(seconds=10))
    fire_due_slots(backend, timezone.now() - timedelta(minutes=10))
    code, _, err = run_status("--check")
    assert code == 1
    assert "PROBLEM: schedule 'minutely' is overdue" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-silence", "0"], "'0' must be a positive number of minutes"),
        (["--max-wait", "soon"], "'soon' is not a number of minutes"),
        (["--window", "-1"], "'-1' must be a positive number of hours"),
        (["--max-failures", "-1"], "must be at least 1"),
    ],
)
def test_bad_limits_are_refused(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("cronrunner_status", *args)


def test_check_names_a_backlog_growing_batch_after_batch(
    settings: Settings, tmp_path: Path
) -> None:
    settings.TASKS = with_schedules(settings, tmp_path)
    for minutes_ago, left in ((4, 0), (3, 5), (2, 9), (1, 14)):
        record_batch(timedelta(minutes=minutes_ago), backlog=left)
    record_batch(timedelta(seconds=5), stop_reason="lock held")  # skipped runs do not count
    code, output, err = run_status("--check")
    assert code == 1
    assert err.strip() == (
        "PROBLEM: the backlog grew across the last 3 batches (5 -> 9 -> 14 due tasks left)"
    )
    assert "due tasks left by the last batches: 0 -> 5 -> 9 -> 14" in output
    assert run_status("--check", "--backlog-batches", "0")[0] == 0
    assert run_status("--check", "--backlog-batches", "5")[0] == 0  # 0 -> 5 -> 9 -> 14 is 4


def test_the_backlog_trend_is_read_along_one_crontab_line(
    settings: Settings, tmp_path: Path
) -> None:
    # The main line leaves about 40 due tasks each run; a `--queue reports` line leaves none.
    settings.TASKS = with_schedules(settings, tmp_path)
    for minutes_ago, left in ((5, 41), (4, 40), (2, 40), (1, 41)):
        record_batch(timedelta(minutes=minutes_ago), backlog=left)
    reports = record_batch(timedelta(minutes=3), backlog=0)
    BatchRun.objects.filter(pk=reports.pk).update(queues="reports")
    code, output, err = run_status("--check")
    assert (code, err) == (0, "")
    assert "due tasks left by the last batches: 41 -> 40 -> 40 -> 41" in output


def test_runs_that_found_the_lock_held_are_not_the_last_batch(
    settings: Settings, tmp_path: Path
) -> None:
    # One run has held the lock for 40 minutes while cron kept starting others.
    settings.TASKS = with_schedules(settings, tmp_path)
    record_batch(timedelta(minutes=40, seconds=20), stop_reason="budget spent")
    for minutes_ago in (30, 10, 1):
        record_batch(timedelta(minutes=minutes_ago), stop_reason="lock held")
    code, _, err = run_status("--check", "--max-wait", "60")
    assert code == 1
    assert err.strip() == (
        "PROBLEM: no batch has run for 40 minutes (limit 5 minutes): the runs since found the "
        "lock held: is a run stuck on a task?"
    )


def test_bad_backlog_batches_is_refused() -> None:
    with pytest.raises(CommandError, match="must be 0 or from 2 to 20"):
        call_command("cronrunner_status", "--backlog-batches", "1")
