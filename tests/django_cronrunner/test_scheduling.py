"""Declared schedules on a real database: firing, catch-up, DST, checks, concurrent runners."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.db import connection, connections
from pytest_django.fixtures import Settings

from cronrunner.clock import FakeClock
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import task_backends, task_enqueued
from django_cronrunner.models import ScheduleState, TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.scheduling.checks import schedule_errors
from django_cronrunner.scheduling.schedules import (
    _insert_slot,
    fire_due_slots,
    parse_schedules,
    slot_of,
)

pytestmark = pytest.mark.django_db(transaction=True)

ALIAS = "scheduled"
NEW_YORK = "America/New_York"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def declare(settings: Settings, tmp_path: Path) -> Callable[..., CronRunnerBackend]:
    """Return a function that declares schedules on the `scheduled` backend and returns it."""

    def declare_schedules(**schedules: dict[str, Any]) -> CronRunnerBackend:
        tasks = dict(settings.TASKS)
        tasks[ALIAS] = {
            "BACKEND": "django_cronrunner.backend.CronRunnerBackend",
            "QUEUES": ["default", "emails"],
            "OPTIONS": {"lock_file": str(tmp_path / "run.lock"), "schedules": schedules},
        }
        settings.TASKS = tasks
        backend = task_backends[ALIAS]
        assert isinstance(backend, CronRunnerBackend)
        return backend

    return declare_schedules


def every(cron: str, **extra: Any) -> dict[str, Any]:
    return {"task": "tests.testapp.tasks.add", "cron": cron, "args": [1, 2], **extra}


def fired_slots(name: str | None = None) -> list[datetime]:
    rows = TaskRecord.objects.filter(schedule_name__isnull=False)
    if name is not None:
        rows = rows.filter(schedule_name=name)
    return [
        slot
        for slot in rows.order_by("scheduled_for").values_list("scheduled_for", flat=True)
        if slot
    ]


def walk(backend: CronRunnerBackend, start: datetime, end: datetime, step: timedelta) -> int:
    """Fire the backend's schedules at each step of simulated time, as cron would."""
    fired = 0
    moment = start
    while moment <= end:
        fired += fire_due_slots(backend, moment)
        moment += step
    return fired


def test_first_sight_starts_tracking_without_backfill(
    declare: Callable[..., CronRunnerBackend],
) -> None:
    backend = declare(quarterly=every("*/15 * * * *"))
    assert fire_due_slots(backend, utc(2026, 6, 1, 9, 7)) == 0
    state = ScheduleState.objects.get(backend_name=ALIAS, name="quarterly")
    assert state.checked_until == utc(2026, 6, 1, 9, 7)
    assert fire_due_slots(backend, utc(2026, 6, 1, 9, 14)) == 0
    assert fire_due_slots(backend, utc(2026, 6, 1, 9, 15, 3)) == 1
    assert fire_due_slots(backend, utc(2026, 6, 1, 9, 16)) == 0
    assert fired_slots() == [utc(2026, 6, 1, 9, 15)]


def test_scheduled_task_is_an_ordinary_result_that_knows_its_slot(
    declare: Callable[..., CronRunnerBackend],
) -> None:
    backend = declare(adder=every("0 * * * *", queue_name="emails", priority=7, kwargs={}))
    seen = []

    def remember(sender: object, task_result: Any, **kwargs: Any) -> None:
        seen.append(task_result)

    task_enqueued.connect(remember)
    try:
        fire_due_slots(backend, utc(2026, 6, 1, 8, 30))
        assert fire_due_slots(backend, utc(2026, 6, 1, 9, 0, 20)) == 1
    finally:
        task_enqueued.disconnect(remember)
    record = TaskRecord.objects.get(schedule_name="adder")
    assert (record.queue_name, record.priority, record.args) == ("emails", 7, [1, 2])
    assert record.due_at == utc(2026, 6, 1, 9)
    assert [result.id for result in seen] == [str(record.pk)]
    assert slot_of(str(record.pk)) == ("adder", utc(2026, 6, 1, 9))
    result = backend.get_result(str(record.pk))
    assert result.task.func.__name__ == "add"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("latest", [utc(2026, 6, 1, 12)]),
        ("all", [utc(2026, 6, 1, 9) + timedelta(minutes=15 * step) for step in range(1, 13)]),
        ("skip", [utc(2026, 6, 1, 12)]),
    ],
)
def test_three_hour_outage_under_each_policy(
    declare: Callable[..., CronRunnerBackend], policy: str, expected: list[datetime]
) -> None:
    backend = declare(feed=every("*/15 * * * *", catch_up=policy))
    fire_due_slots(backend, utc(2026, 6, 1, 9, 0, 30))
    # Nothing runs for three hours; the first run back comes 40 s after the 12:00 slot.
    assert fire_due_slots(backend, utc(2026, 6, 1, 12, 0, 40)) == len(expected)
    assert fired_slots() == expected


def test_skip_policy_drops_a_slot_later_than_the_grace(
    declare: Callable[..., CronRunnerBackend],
) -> None:
    backend = declare(feed=every("*/15 * * * *", catch_up="skip"))
    fire_due_slots(backend, utc(2026, 6, 1, 9, 0, 30))
    assert fire_due_slots(backend, utc(2026, 6, 1, 12, 7)) == 0
    assert fire_due_slots(backend, utc(2026, 6, 1, 12, 15, 10)) == 1
    assert fired_slots() == [utc(2026, 6, 1, 12, 15)]


def test_new_york_fall_back_fires_fixed_time_once_and_real_time_twice(
    declare: Callable[..., CronRunnerBackend],
) -> None:
    backend = declare(
        nightly=every("30 1 * * *", timezone=NEW_YORK),
        halfhourly=every("*/30 * * * *", timezone=NEW_YORK),
    )
    walk(backend, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12), timedelta(minutes=5))
    # 01:30 EDT on 1 November, then 01:30 EST on 2 November: never 01:30 EST on the 1st.
    assert fired_slots("nightly") == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    repeated_hour = [
        slot
        for slot in fired_slots("halfhourly")
        if utc(2026, 11, 1, 5) <= slot < utc(2026, 11, 1, 7)
    ]
    assert repeated_hour == [
        utc(2026, 11, 1, 5) + timedelta(minutes=30 * step) for step in range(4)
    ]


def test_new_york_spring_forward_runs_the_skipped_slot_once(
    declare: Callable[..., CronRunnerBackend],
) -> None:
    backend = declare(nightly=every("30 2 * * *", timezone=NEW_YORK))
    walk(backend, utc(2026, 3, 7, 12), utc(2026, 3, 9, 12), timedelta(minutes=5))
    # 02:30 does not exist on 8 March: it runs when the clock reaches 03:00 EDT (07:00 UTC).
    assert fired_slots("nightly") == [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)]


def test_changing_the_expression_fires_no_spurious_slot(
    declare: Callable[..., CronRunnerBackend],
) -> None:
    backend = declare(report=every("0 9 * * *"))
    fire_due_slots(backend, utc(2026, 6, 1, 8))
    backend = declare(report=every("*/10 * * * *"))
    # The new rule's 08:10..08:50 slots fell before anyone asked for them.
    assert fire_due_slots(backend, utc(2026, 6, 1, 8, 55)) == 0
    assert fire_due_slots(backend, utc(2026, 6, 1, 9, 0, 5)) == 1
    state = ScheduleState.objects.get(name="report")
    assert state.expression == "*/10 * * * *"
    assert fired_slots() == [utc(2026, 6, 1, 9)]


def test_disabled_paused_and_removed_schedules_do_not_fire(
    declare: Callable[..., CronRunnerBackend],
) -> None:
    backend = declare(off=every("* * * * *", enabled=False), held=every("* * * * *"))
    fire_due_slots(backend, utc(2026, 6, 1, 8))
    ScheduleState.objects.filter(name="held").update(paused=True)
    assert fire_due_slots(backend, utc(2026, 6, 1, 8, 5)) == 0
    ScheduleState.objects.filter(name="held").update(paused=False)
    assert fire_due_slots(backend, utc(2026, 6, 1, 8, 6, 1)) == 1  # no replay of the paused minutes
    backend = declare()
    assert fire_due_slots(backend, utc(2026, 6, 1, 9)) == 0
    assert ScheduleState.objects.filter(name="held").exists()  # history stays
    assert fired_slots() == [utc(2026, 6, 1, 8, 6)]


def test_the_same_slot_cannot_be_inserted_twice(declare: Callable[..., CronRunnerBackend]) -> None:
    backend = declare(minute=every("* * * * *"))
    spec = parse_schedules(backend)[0][0]
    slot = utc(2026, 6, 1, 8, 1)
    assert _insert_slot(backend, spec, slot, slot) is not None
    # A second runner that got past the row lock still cannot enqueue the slot again.
    assert _insert_slot(backend, spec, slot, slot) is None
    assert fired_slots() == [slot]


@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="concurrent writers need PostgreSQL or MariaDB"
)
def test_three_concurrent_runners_fire_each_of_ten_slots_once(
    declare: Callable[..., CronRunnerBackend], tmp_path: Path
) -> None:
    out = tmp_path / "runs.txt"
    declare(
        minute={
            "task": "tests.testapp.tasks.append_line",
            "cron": "* * * * *",
            "kwargs": {"path": str(out), "line": "ran"},
            "catch_up": "all",
        }
    )
    start = utc(2026, 6, 1, 8, 0, 30)
    run_due_tasks(backend_alias=ALIAS, clock=FakeClock(start), lock_file=tmp_path / "first.lock")
    errors: list[BaseException] = []

    def runner(moment: datetime, number: int, barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
            run_due_tasks(
                backend_alias=ALIAS,
                clock=FakeClock(moment),
                lock_file=tmp_path / f"runner-{number}.lock",
            )
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            connections.close_all()

    for minute in range(1, 11):
        moment = start + timedelta(minutes=minute)
        barrier = threading.Barrier(3)
        threads = [threading.Thread(target=runner, args=(moment, n, barrier)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    slots = fired_slots("minute")
    assert slots == [utc(2026, 6, 1, 8, minute) for minute in range(1, 11)]
    assert Counter(TaskRecord.objects.values_list("status", flat=True)) == {"SUCCESSFUL": 10}
    assert out.read_text().splitlines() == ["ran"] * 10


def test_run_due_tasks_fires_then_drains_and_counts(
    declare: Callable[..., CronRunnerBackend], tmp_path: Path
) -> None:
    declare(adder=every("*/5 * * * *"))
    clock = FakeClock(utc(2026, 6, 1, 8, 1))
    first = run_due_tasks(backend_alias=ALIAS, clock=clock, lock_file=tmp_path / "a.lock")
    clock.set(utc(2026, 6, 1, 8, 5, 2))
    second = run_due_tasks(backend_alias=ALIAS, clock=clock, lock_file=tmp_path / "a.lock")
    assert (first.scheduled, second.scheduled) == (0, 1)
    assert second.succeeded == 1
    record = TaskRecord.objects.get(schedule_name="adder")
    assert (record.status, record.return_value) == ("SUCCESSFUL", 3)


def test_an_invalid_schedule_is_logged_and_the_others_still_fire(
    declare: Callable[..., CronRunnerBackend], caplog: pytest.LogCaptureFixture
) -> None:
    backend = declare(broken=every("not cron"), good=every("* * * * *"))
    fire_due_slots(backend, utc(2026, 6, 1, 8))
    assert fire_due_slots(backend, utc(2026, 6, 1, 8, 1)) == 1
    # One line per run, naming the schedule once.
    lines = [record.getMessage() for record in caplog.records if "broken" in record.getMessage()]
    assert len(lines) == 2
    line = lines[-1]
    assert line.startswith("Schedule 'broken': ") and line.count("'broken'") == 1
    assert line.endswith(" It is not fired until this is fixed.")


BAD_DECLARATIONS = [
    ("not a dict", "must be a dict, not str"),
    ({"task": "tests.testapp.tasks.add"}, "needs 'cron' as a string"),
    ({"cron": "* * * * *"}, "needs 'task' as a string"),
    (every("* * * * *", when="now"), "unknown keys ['when']"),
    (every("60 * * * *"), "Invalid cron expression '60 * * * *'"),
    (every("0 0 31 2 *"), "never fires"),
    (every("@fortnightly"), "Unknown cron alias '@fortnightly'"),
    (every("* * * * *", timezone="Europe/Atlantis"), "Unknown time zone 'Europe/Atlantis'"),
    (every("* * * * *", catch_up="some"), "Unknown catch-up policy 'some'"),
    (every("* * * * *", task="tests.testapp.tasks.missing"), "tests.testapp.tasks.missing"),
    (every("* * * * *", task="tests.testapp.tasks.NOT_A_TASK"), "NOT_A_TASK"),
    (every("* * * * *", task="no.such.module.task"), "no.such.module.task"),
    (every("* * * * *", queue_name="reports"), "Queue 'reports' is not valid"),
    (every("* * * * *", priority=1000), "priority must be a whole number"),
    (every("* * * * *", args=[object()]), "JSON"),
    (every("* * * * *", enabled="yes"), "'enabled' must be True or False"),
]


@pytest.mark.parametrize(("declaration", "message"), BAD_DECLARATIONS)
def test_system_check_names_the_schedule_and_the_problem(
    declare: Callable[..., CronRunnerBackend], declaration: object, message: str
) -> None:
    backend = declare(broken=declaration, fine=every("* * * * *"))
    errors = schedule_errors(backend)
    assert len(errors) == 1
    assert errors[0].level == checks.ERROR
    assert "'broken'" in errors[0].msg
    assert message in errors[0].msg
    assert "schedule 'broken'" in str(errors[0].obj)


def test_manage_py_check_reports_an_invalid_schedule(
    declare: Callable[..., CronRunnerBackend],
) -> None:
    declare(broken=every("61 * * * *"))
    errors = [error for error in checks.run_checks() if error.id == "django_cronrunner.E010"]
    assert [error.obj for error in errors] == [f"TASKS[{ALIAS!r}] schedule 'broken'"]


def test_two_backends_may_share_a_schedule_name(
    declare: Callable[..., CronRunnerBackend], settings: Settings, tmp_path: Path
) -> None:
    first = declare(nightly=every("0 3 * * *"))
    settings.TASKS = {
        **settings.TASKS,
        "second": {
            **settings.TASKS[ALIAS],
            "OPTIONS": {"schedules": {"nightly": every("0 3 * * *")}},
        },
    }
    second = task_backends["second"]
    assert isinstance(second, CronRunnerBackend)
    for backend in (first, second):
        fire_due_slots(backend, utc(2026, 6, 1, 2))
        assert fire_due_slots(backend, utc(2026, 6, 1, 3, 0, 5)) == 1
    assert sorted(TaskRecord.objects.values_list("backend_name", flat=True)) == [
        "scheduled",
        "second",
    ]
