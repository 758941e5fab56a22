"""Budget-aware picking on a real database: stored durations and a run that leaves a long task."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cronrunner.clock import FakeClock
from cronrunner.durations import SAMPLES_KEPT
from django_cronrunner.models import BatchRun, TaskDuration, TaskRecord
from tests.django_cronrunner.rows import task_store
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

ADD = "tests.testapp.tasks.add"
REPORT = "tests.testapp.tasks.report"


def test_durations_are_stored_per_backend_and_replaced() -> None:
    TaskDuration.objects.create(backend_name="other", task_path=ADD, samples=[9.0])
    store = task_store()
    store.save_durations({ADD: [1.0, 2.0], REPORT: [3.0]})
    store.save_durations({ADD: [2.0, 4.0]})
    assert store.load_durations() == {ADD: [2.0, 4.0], REPORT: [3.0]}
    assert TaskDuration.objects.get(backend_name="other").samples == [9.0]


def test_values_that_are_not_durations_are_left_out() -> None:
    TaskDuration.objects.create(
        backend_name="default", task_path=ADD, samples=[1, "x", True, -1, None, 2.5]
    )
    TaskDuration.objects.create(backend_name="default", task_path=REPORT, samples={"a": 1})
    assert task_store().load_durations() == {ADD: [1.0, 2.5]}


def test_a_claim_leaves_the_paths_it_is_told_to_skip() -> None:
    skipped = tasks.report.using(priority=5).enqueue("monthly")
    taken = tasks.add.enqueue(1, 2)
    claimed = task_store().claim(datetime.now(UTC), 10, frozenset({REPORT}))
    assert [task.id for task in claimed] == [taken.id]
    assert TaskRecord.objects.get(pk=skipped.id).status == "READY"


def test_a_run_leaves_a_task_that_cannot_fit_its_budget_and_stores_what_it_measured(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The report typically takes 80 s; a 50 s budget can never fit it after another task.
    TaskDuration.objects.create(backend_name="default", task_path=REPORT, samples=[80.0] * 3)
    first = tasks.add.using(priority=1).enqueue(1, 2)
    report = tasks.report.enqueue("monthly")
    clock = FakeClock(datetime.now(UTC))
    monkeypatch.setattr("django_cronrunner.run.runner.SystemClock", lambda: clock)
    out = StringIO()
    with caplog.at_level(logging.INFO, logger="cronrunner"):
        call_command("run_due_tasks", "--max-seconds", "50", stdout=out)
    assert TaskRecord.objects.get(pk=first.id).status == "SUCCESSFUL"
    assert TaskRecord.objects.get(pk=report.id).status == "READY"
    assert f"Tasks of {REPORT} are left for a later run" in caplog.text
    assert "stopped: budget spent" in out.getvalue()
    assert BatchRun.objects.get().backlog == 1
    assert TaskDuration.objects.get(task_path=ADD).samples == [0.0]  # the fake clock stood

    # The next run starts with it: a run's first task always starts.
    call_command("run_due_tasks", "--max-seconds", "50", stdout=StringIO())
    assert TaskRecord.objects.get(pk=report.id).status == "SUCCESSFUL"
    assert TaskDuration.objects.get(task_path=REPORT).samples == [80.0, 80.0, 80.0, 0.0]


def test_the_history_costs_one_read_and_one_write_per_run_with_tasks(tmp_path: object) -> None:
    for number in range(SAMPLES_KEPT + 5):
        tasks.add.enqueue(number, 0)
    store_queries = []
    with CaptureQueriesContext(connection) as queries:
        call_command("run_due_tasks", stdout=StringIO())
    for query in queries.captured_queries:
        if "cronrunner_duration" in query["sql"]:
            store_queries.append(query["sql"].split()[0])
    assert store_queries == ["SELECT", "INSERT"]
    assert len(TaskDuration.objects.get(task_path=ADD).samples) == SAMPLES_KEPT
