"""The dashboard's tables, as rows ready to show: one line per cell."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.http import urlencode

from django_cronrunner.models import BatchRun
from django_cronrunner.operations.health import QueueBacklog
from django_cronrunner.operations.status import ScheduleStatus
from django_cronrunner.web.admin_batches import budget_meter, tasks_and_failures
from django_cronrunner.web.admin_filters import (
    NO_ERROR,
    FailedWithFilter,
    FinishedSinceFilter,
    StatusFilter,
)
from django_cronrunner.web.dashboard_metrics import FailureGroup, QueueFlow
from django_cronrunner.web.display import schedule_state, seconds, short_time, time_cell


def queue_rows(
    backlog: list[QueueBacklog], flows: list[QueueFlow], backend_alias: str
) -> list[dict[str, Any]]:
    """One row per queue with work now or finished work in the window, with the task list's
    query that shows the queue's tasks of this backend."""
    waiting = {queue.queue_name: queue for queue in backlog}
    flowing = {flow.queue_name: flow for flow in flows}
    rows = []
    for name in sorted(set(waiting) | set(flowing)):
        queue, flow = waiting.get(name), flowing.get(name)
        rows.append(
            {
                "name": name,
                "query": urlencode(
                    {"backend_name__exact": backend_alias, "queue_name__exact": name}
                ),
                "due": queue.due if queue else 0,
                "deferred": queue.deferred if queue else 0,
                "running": queue.running if queue else 0,
                "finished": flow.finished if flow else 0,
                "per_hour": flow.per_hour if flow else 0.0,
                "failed": flow.failed if flow else 0,
                "wait_p50": seconds(flow.wait_p50 if flow else None),
                "wait_p95": seconds(flow.wait_p95 if flow else None),
            }
        )
    return rows


def batch_rows(batches: list[BatchRun], now: datetime) -> list[dict[str, Any]]:
    """The latest batches with the share of their budget each used."""
    return [
        {
            "started": time_cell(batch.started_at, now),
            "host": batch.host,
            "tasks": tasks_and_failures(batch.tasks_run, batch.failed),
            "meter": budget_meter(batch.duration, batch.max_seconds),
            "stop_reason": batch.stop_reason,
        }
        for batch in batches
    ]


def failure_rows(
    groups: list[FailureGroup], now: datetime, since: datetime, backend_alias: str
) -> list[dict[str, Any]]:
    """Failure groups with the task list's query that shows exactly each group's tasks: this
    backend's, failed since the window's start, of its path and last exception class."""
    rows = []
    for group in groups:
        query = {
            StatusFilter.parameter_name: "failed",
            "backend_name__exact": backend_alias,
            "task_path__exact": group.task_path,
            FailedWithFilter.parameter_name: group.exception_class_path or NO_ERROR,
            FinishedSinceFilter.parameter_name: since.isoformat(),
        }
        rows.append(
            {
                "task_path": group.task_path,
                "exception_class_path": group.exception_class_path,
                "count": group.count,
                "last": time_cell(group.last_at, now),
                "query": urlencode(query),
            }
        )
    return rows


def schedule_rows(statuses: list[ScheduleStatus], now: datetime) -> list[dict[str, Any]]:
    """Each declared schedule's next slots, last slot and whether it keeps up."""
    rows = []
    for status in statuses:
        rows.append(
            {
                "name": status.name,
                "expression": status.expression,
                "timezone": status.timezone,
                "next_slots": ", ".join(short_time(slot, now) for slot in status.next_slots) or "-",
                "last_slot": time_cell(status.last_slot, now),
                "state": schedule_state(status, now),
            }
        )
    return rows
