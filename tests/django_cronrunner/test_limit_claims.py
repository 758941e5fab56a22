"""The claim's limit condition: a backlog of tasks of a full key is left out without counting
the key's slots once per waiting row, and each task is still held to its own limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection

from cronrunner.store import Status
from django_cronrunner.models import TaskRecord
from django_cronrunner.storage.limits import within_limits

pytestmark = pytest.mark.django_db(transaction=True)

NOON = datetime(2030, 1, 1, 12, tzinfo=UTC)
WAITING = 300


def row(**fields: Any) -> TaskRecord:
    base: dict[str, Any] = {
        "backend_name": "default",
        "task_path": "tests.testapp.tasks.add",
        "due_at": NOON,
        "enqueued_at": NOON,
    }
    return TaskRecord(**(base | fields))


def hold(key: str, limit: int, slot: int) -> TaskRecord:
    return row(
        status=Status.RUNNING,
        claimed_by="elsewhere",
        concurrency_key=key,
        concurrency_limit=limit,
        concurrency_slot=slot,
    )


def claimable() -> list[str]:
    """Return the paths of the due rows the claim may take, in claim order."""
    due = within_limits(TaskRecord.objects.filter(backend_name="default").due(NOON))
    return list(due.values_list("task_path", flat=True))


def test_each_waiting_task_is_held_to_its_own_limit() -> None:
    # Two slots of `api` are held by tasks that declare a limit of 2.
    TaskRecord.objects.bulk_create(
        [
            hold("api", 2, 0),
            hold("api", 2, 1),
            row(task_path="limit 1", concurrency_key="api", concurrency_limit=1),
            row(task_path="limit 2", concurrency_key="api", concurrency_limit=2),
            row(task_path="limit 3", concurrency_key="api", concurrency_limit=3),
            row(task_path="other key", concurrency_key="mail", concurrency_limit=1),
            row(task_path="no key"),
        ]
    )
    assert sorted(claimable()) == ["limit 3", "no key", "other key"]


def backlog_of_a_full_key() -> None:
    """One RUNNING task holds the only slot of `full`; WAITING tasks of `full` are due ahead
    of one task without a key."""
    TaskRecord.objects.bulk_create(
        [
            hold("full", 1, 0),
            *(row(priority=5, concurrency_key="full", concurrency_limit=1) for _ in range(WAITING)),
            row(task_path="no key"),
        ]
    )
    analyze = "ANALYZE TABLE cronrunner_task" if connection.vendor == "mysql" else "ANALYZE"
    with connection.cursor() as cursor:
        cursor.execute(analyze)
        if connection.vendor == "mysql":
            cursor.fetchall()
    assert claimable() == ["no key"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="reads PostgreSQL's plan")
def test_postgresql_counts_the_held_slots_once_per_claim_not_once_per_waiting_task() -> None:
    backlog_of_a_full_key()
    due = within_limits(TaskRecord.objects.filter(backend_name="default").due(NOON))
    plan = due.values("pk")[:1].explain(analyze=True)
    assert f"Rows Removed by Filter: {WAITING}" in plan, plan
    assert "hashed SubPlan" in plan, plan
    assert f"loops={WAITING})" not in plan, plan


def read_rows(plan: Any, table: str) -> list[int]:
    """Return the rows MariaDB's ANALYZE saw read from `table`, wherever it appears."""
    found = []
    if isinstance(plan, dict):
        if plan.get("table_name") == table:
            found.append(int(plan["r_rows"]))
        for value in plan.values():
            found += read_rows(value, table)
    elif isinstance(plan, list):
        for value in plan:
            found += read_rows(value, table)
    return found


@pytest.mark.skipif(connection.vendor != "mysql", reason="reads MariaDB's plan")
def test_mariadb_counts_held_slots_among_running_tasks_not_among_every_task_of_the_key() -> None:
    backlog_of_a_full_key()
    due = within_limits(TaskRecord.objects.filter(backend_name="default").due(NOON))
    sql, params = due.values("pk")[:1].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE FORMAT=JSON {sql}", params)
        plan = json.loads(cursor.fetchone()[0])
    # MariaDB has no partial index: every row of a key is in the slot index.
    assert read_rows(plan, "cronrunner_held") == [1], plan
