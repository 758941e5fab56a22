"""Prometheus metrics read from the database, for the textfile collector and the metrics view."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from django.db.models import Count
from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from cronrunner.durations import percentile
from cronrunner.store import Status
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.models import TaskDuration, TaskRecord
from django_cronrunner.operations.health import FAILURE_WINDOW, health
from django_cronrunner.storage.database_clock import database_now

#: Tasks finished within this window are counted per path (a gauge: pruning forbids a counter).
FINISHED_WINDOW: timedelta = FAILURE_WINDOW


def registry_for(
    backends: Sequence[CronRunnerBackend], now: datetime | None = None
) -> CollectorRegistry:
    """Return a registry holding the metrics of each backend, labelled by its alias, measured
    at `now` or else at its database's time (the clock every run and status path reads)."""
    registry = CollectorRegistry(auto_describe=True)

    def gauge(name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(name, documentation, ["backend", *labels], registry=registry)

    due = gauge("cronrunner_queue_due_tasks", "Tasks due and waiting to run.", "queue")
    deferred = gauge("cronrunner_queue_deferred_tasks", "Tasks waiting for run_after.", "queue")
    running = gauge("cronrunner_queue_running_tasks", "Tasks a run is working on.", "queue")
    oldest = gauge("cronrunner_oldest_due_age_seconds", "How long the oldest due task has waited.")
    finished = gauge(
        "cronrunner_tasks_finished_last_hour",
        "Tasks that finished in the last hour, by path and status.",
        "task_path",
        "status",
    )
    p95 = gauge(
        "cronrunner_task_duration_p95_seconds",
        "95th percentile of the recent attempts of a task path.",
        "task_path",
    )
    last_end = gauge(
        "cronrunner_last_batch_timestamp_seconds",
        "When the last batch that took the lock finished (Unix time).",
    )
    last_duration = gauge("cronrunner_last_batch_duration_seconds", "How long the last batch ran.")
    last_budget = gauge("cronrunner_last_batch_budget_seconds", "The last batch's --max-seconds.")
    last_share = gauge(
        "cronrunner_last_batch_budget_used_ratio", "The last batch's duration over its budget."
    )
    last_run = gauge("cronrunner_last_batch_tasks_run", "Tasks the last batch ran.")
    last_failed = gauge(
        "cronrunner_last_batch_tasks_failed", "Tasks that failed in the last batch."
    )
    last_skip = gauge(
        "cronrunner_last_lock_held_timestamp_seconds",
        "When a run last found the lock held and skipped its batch (Unix time).",
    )
    for backend in backends:
        alias = backend.alias
        at = now or database_now(backend.config.database)
        report = health(backend, at)
        for queue in report.queues:
            due.labels(alias, queue.queue_name).set(queue.due)
            deferred.labels(alias, queue.queue_name).set(queue.deferred)
            running.labels(alias, queue.queue_name).set(queue.running)
        wait = report.oldest_due_wait
        oldest.labels(alias).set(0 if wait is None else wait.total_seconds())
        rows = (
            TaskRecord.objects.using(backend.config.database)
            .filter(
                backend_name=alias,
                status__in=[Status.SUCCESSFUL, Status.FAILED],
                finished_at__gte=at - FINISHED_WINDOW,
            )
            .values("task_path", "status")
            .annotate(count=Count("pk"))
            .order_by("task_path", "status")
        )
        for row in rows:
            finished.labels(alias, row["task_path"], row["status"]).set(row["count"])
        durations = TaskDuration.objects.using(backend.config.database).filter(backend_name=alias)
        for path, samples in durations.values_list("task_path", "samples"):
            seconds = [float(s) for s in samples if isinstance(s, int | float)]
            if seconds:
                p95.labels(alias, path).set(percentile(seconds))
        batch = report.last_batch
        if batch is not None:
            last_end.labels(alias).set(batch.finished_at.timestamp())
            last_duration.labels(alias).set(batch.duration)
            last_budget.labels(alias).set(batch.max_seconds)
            last_share.labels(alias).set(batch.duration / batch.max_seconds)
            last_run.labels(alias).set(batch.tasks_run)
            last_failed.labels(alias).set(batch.failed)
        if report.last_lock_held_at is not None:
            last_skip.labels(alias).set(report.last_lock_held_at.timestamp())
    return registry


def write_textfile(backend: CronRunnerBackend, path: Path, now: datetime) -> None:
    """Write the backend's metrics to path atomically (a temporary file renamed over it)."""
    write_to_textfile(str(path), registry_for([backend], now))
