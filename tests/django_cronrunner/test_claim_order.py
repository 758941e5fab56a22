"""Ties in priority and due time run in the order they were enqueued, on every database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from cronrunner.clock import FakeClock
from django_cronrunner.models import TaskRecord
from django_cronrunner.run.runner import run_due_tasks
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
    store.release(store.claim(NINE, 3), NINE)
    claimed = store.claim(NINE, 8)
    assert [task.id for task in claimed] == [str(row.pk) for row in rows]


def test_tasks_deferred_to_the_same_time_run_in_enqueue_order(tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    for n in range(8):
        tasks.append_line.using(run_after=NINE).enqueue(str(log), f"line {n}")
    run_due_tasks(max_seconds=30, clock=FakeClock(NINE + timedelta(seconds=1)))
    assert log.read_text().splitlines() == [f"line {n}" for n in range(8)]


def drop_sqlite_statistics() -> None:
    # ANALYZE's table outlives the rows a test leaves behind. A connection keeps what it read
    # of it until told to read it again.
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS sqlite_stat1")
        cursor.execute("ANALYZE sqlite_schema")


@pytest.fixture
def without_statistics() -> Iterator[None]:
    drop_sqlite_statistics()
    yield
    drop_sqlite_statistics()


@pytest.mark.usefixtures("without_statistics")
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


def plans_of_recovery_and_claim(expected: int) -> list[str]:
    """Recover and claim as a run does; return the query plan of each statement they sent."""
    statements: list[tuple[str, Any]] = []

    def capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append((sql, params))
        return execute(sql, params, many, context)

    store = task_store()
    with connection.execute_wrapper(capture):
        store.recover(NINE)
        claimed = store.claim(NINE, 8)
    assert len(claimed) == expected
    plans = []
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plans.append(" / ".join(row[3] for row in cursor.fetchall()))
    return plans


@pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="PostgreSQL and MariaDB keep statistics per value; SQLite's ANALYZE keeps an average",
)
@pytest.mark.usefixtures("without_statistics")
def test_claim_and_recovery_seek_their_rows_with_or_without_statistics() -> None:
    TaskRecord.objects.bulk_create(
        TaskRecord(
            backend_name="default",
            task_path="tests.testapp.tasks.add",
            status="READY" if n < 2 else "SUCCESSFUL",
            due_at=NINE - timedelta(seconds=n),
            enqueued_at=NINE - timedelta(hours=1),
            finished_at=None if n < 2 else NINE,
        )
        for n in range(200)
    )
    plans = plans_of_recovery_and_claim(expected=2)  # no statistics yet
    TaskRecord.objects.filter(status__in=["READY", "RUNNING"]).update(
        status="SUCCESSFUL", finished_at=NINE
    )
    # ANALYZE of an idle queue: the statistics say a status matches the whole table.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    TaskRecord.objects.create(
        backend_name="default", task_path="tests.testapp.tasks.add", due_at=NINE, enqueued_at=NINE
    )
    plans += plans_of_recovery_and_claim(expected=1)
    for plan in plans:
        # Seeking the status is what keeps finished rows out of reach: a scan, a skip-scan or
        # a search by backend reads them all, and a temporary B-tree sorts them.
        assert "(status=?)" in plan, plans
        for symptom in ("SCAN cronrunner_task", "ANY(status)", "(backend_name=?)", "TEMP B-TREE"):
            assert symptom not in plan, plans
