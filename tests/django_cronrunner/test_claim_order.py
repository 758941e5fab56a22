"""Ties in priority and due time run in the order they were enqueued, on every database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection

from cronrunner.clock import FakeClock
from django_cronrunner.models import TaskRecord
from django_cronrunner.runner import run_due_tasks
from tests.django_cronrunner.rows import task_store
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

NINE = datetime(2026, 6, 1, 9, tzinfo=UTC)


def test_ties_are_claimed_in_enqueue_order() -> None:
    rows = [
        TaskRecord.objects.create(
            backend_name="default",
            task_path="tests.testapp.tasks.add",
            args=[n, n],
            due_at=NINE,
            enqueued_at=NINE - timedelta(hours=1) + timedelta(seconds=n),
        )
        for n in range(8)
    ]
    # Shuffle the physical order the way real traffic does: claim and hand back a few.
    store = task_store(lock="k")
    store.release(store.claim(NINE, 3))
    claimed = store.claim(NINE, 8)
    assert [task.id for task in claimed] == [str(row.pk) for row in rows]


def test_tasks_deferred_to_the_same_time_run_in_enqueue_order(tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    for n in range(8):
        tasks.append_line.using(run_after=NINE).enqueue(str(log), f"line {n}")
    run_due_tasks(max_seconds=30, clock=FakeClock(NINE + timedelta(seconds=1)))
    assert log.read_text().splitlines() == [f"line {n}" for n in range(8)]


def test_the_claim_reads_the_claim_index_in_order_without_sorting() -> None:
    TaskRecord.objects.bulk_create(
        TaskRecord(
            backend_name="default",
            task_path="tests.testapp.tasks.add",
            status="SUCCESSFUL" if n % 50 else "READY",
            priority=n % 7,
            due_at=NINE - timedelta(seconds=n),
            enqueued_at=NINE - timedelta(hours=1),
        )
        for n in range(3000)
    )
    analyze = {
        "postgresql": "ANALYZE cronrunner_task",
        "mysql": "ANALYZE TABLE cronrunner_task",
        "sqlite": "ANALYZE",
    }[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(analyze)
        if connection.vendor == "mysql":
            cursor.fetchall()
    plan = TaskRecord.objects.filter(backend_name="default").due(NINE)[:8].explain()
    assert "cronrunner_task_claim" in plan, plan
    # Read in claim order, the query stops after `limit` rows instead of sorting every due row
    # (on MariaDB, a sort would also lock every due row it read for the claim's transaction).
    assert "filesort" not in plan and "TEMP B-TREE" not in plan and "Sort" not in plan, plan
