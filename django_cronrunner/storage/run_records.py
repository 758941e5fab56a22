"""What a run records of itself: the batch log row, and the recent durations of each task path
(which budget-aware picking reads)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from django.db import connections

from cronrunner.store import BatchSummary
from django_cronrunner.models import BatchRun, TaskDuration, as_list


def load_durations(using: str, backend_name: str) -> dict[str, list[float]]:
    """Return the recent attempt durations of each task path, oldest first."""
    rows = TaskDuration.objects.using(using).filter(backend_name=backend_name)
    loaded = rows.values_list("task_path", "samples")
    return {path: seconds for path, samples in loaded if (seconds := _seconds(samples))}


def save_durations(using: str, backend_name: str, durations: Mapping[str, Sequence[float]]) -> None:
    """Store the recent attempt durations of the given task paths, replacing theirs."""
    rows = [
        TaskDuration(backend_name=backend_name, task_path=path, samples=list(samples))
        for path, samples in sorted(durations.items())  # one lock order for every host
    ]
    targeted = connections[using].features.supports_update_conflicts_with_target
    TaskDuration.objects.using(using).bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["backend_name", "task_path"] if targeted else None,
        update_fields=["samples"],
    )


def record_batch(using: str, backend_name: str, summary: BatchSummary) -> None:
    """Store a run's summary in the batch log."""
    assert summary.finished_at is not None
    BatchRun.objects.using(using).create(
        worker_id=summary.worker_id,
        host=summary.host[:255],
        pid=summary.pid,
        backend_name=backend_name,
        # Only a log: many long queue names are cut rather than fail the row.
        queues="*" if summary.queues is None else ",".join(sorted(summary.queues))[:255],
        started_at=summary.started_at,
        finished_at=summary.finished_at,
        duration=summary.duration,
        max_seconds=summary.max_seconds,
        max_tasks=summary.max_tasks,
        tasks_run=summary.tasks_run,
        succeeded=summary.succeeded,
        failed=summary.failed,
        recovered=summary.recovered,
        scheduled=summary.scheduled,
        backlog=summary.backlog,
        stop_reason=summary.stop_reason,
        error=summary.error,
    )


def _seconds(samples: object) -> list[float]:
    """Return the durations a stored row holds, leaving out anything that is not one."""
    return [
        float(value)
        for value in as_list(samples)
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    ]
