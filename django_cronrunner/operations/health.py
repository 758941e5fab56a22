"""Is the runner keeping up? Backlog, last batch, recent failures, and the problems they show."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q

from cronrunner.store import Status, StopReason
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.models import BatchRun, TaskRecord

FAILURE_WINDOW = timedelta(hours=1)
#: How many recent batches' backlogs are read; --backlog-batches can look at up to this many.
BACKLOG_HISTORY = 20


@dataclass(frozen=True, slots=True)
class QueueBacklog:
    """Unfinished tasks of one queue."""

    queue_name: str
    due: int
    deferred: int
    running: int


@dataclass(frozen=True, slots=True)
class LastBatch:
    """The most recent entry of the batch log."""

    started_at: datetime
    finished_at: datetime
    duration: float
    max_seconds: float
    tasks_run: int
    failed: int
    stop_reason: str
    host: str
    error: str


@dataclass(frozen=True, slots=True)
class Health:
    """What an operator or a monitor needs to know about one backend right now."""

    backend: str
    now: datetime
    queues: list[QueueBacklog]
    oldest_due_at: datetime | None
    failures_in_window: int
    #: The most recent batch that took the lock (a run that found it held did no work).
    last_batch: LastBatch | None
    #: When a run last found the lock held and skipped its batch.
    last_lock_held_at: datetime | None
    #: Due tasks left by the most recent batches that ran (lock-held skips left out) of the last
    #: batch's crontab line (its --queue), oldest first.
    recent_backlog: list[int]

    @property
    def oldest_due_wait(self) -> timedelta | None:
        return None if self.oldest_due_at is None else self.now - self.oldest_due_at

    def as_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict with ISO 8601 instants."""
        data = asdict(self)
        wait = self.oldest_due_wait
        data["oldest_due_wait_seconds"] = None if wait is None else wait.total_seconds()
        ready: dict[str, Any] = json_ready(data)
        return ready


@dataclass(frozen=True, slots=True)
class Limits:
    """Thresholds past which `cronrunner_status --check` reports a problem; None turns one off."""

    max_silence: timedelta | None = timedelta(minutes=5)
    max_wait: timedelta | None = timedelta(minutes=15)
    max_failures: int | None = None
    backlog_batches: int | None = 3


def health(backend: CronRunnerBackend, now: datetime) -> Health:
    """Measure one backend's backlog, last batch and recent failures."""
    using = backend.config.database
    tasks = TaskRecord.objects.using(using).filter(backend_name=backend.alias)
    unfinished = (
        tasks.filter(status__in=[Status.READY, Status.RUNNING])
        .values("queue_name")
        .annotate(
            due=Count("pk", filter=Q(status=Status.READY, due_at__lte=now)),
            deferred=Count("pk", filter=Q(status=Status.READY, due_at__gt=now)),
            running=Count("pk", filter=Q(status=Status.RUNNING)),
        )
        .order_by("queue_name")
    )
    oldest = tasks.due(now).aggregate(oldest=Min("due_at"))["oldest"]
    failures = tasks.failed().filter(finished_at__gte=now - FAILURE_WINDOW).count()
    batches = BatchRun.objects.using(using).filter(backend_name=backend.alias)
    # A run that found the lock held did no work: counted as the last batch, it would hide a
    # run stuck for hours behind the skips of the runs cron keeps starting.
    worked = batches.exclude(stop_reason=StopReason.LOCK_HELD).order_by("-started_at")
    batch = worked.first()
    last = (
        None
        if batch is None
        else LastBatch(
            started_at=batch.started_at,
            finished_at=batch.finished_at,
            duration=batch.duration,
            max_seconds=batch.max_seconds,
            tasks_run=batch.tasks_run,
            failed=batch.failed,
            stop_reason=batch.stop_reason,
            host=batch.host,
            error=batch.error,
        )
    )
    skipped = (
        batches.filter(stop_reason=StopReason.LOCK_HELD)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    # Each crontab line (the queues its runs take) leaves a backlog of its own queues: the
    # trend is read along the last batch's line, never across lines.
    line = worked.filter(queues=batch.queues) if batch is not None else worked
    recent = line.values_list("backlog", flat=True)[:BACKLOG_HISTORY]
    return Health(
        backend=backend.alias,
        now=now,
        queues=[QueueBacklog(**row) for row in unfinished],
        oldest_due_at=oldest,
        failures_in_window=failures,
        last_batch=last,
        last_lock_held_at=skipped,
        recent_backlog=list(reversed(recent)),
    )


def problems(report: Health, limits: Limits) -> list[str]:
    """Name each way the backend is not healthy, one line each."""
    found = []
    if limits.max_silence is not None:
        if report.last_batch is None:
            found.append("no batch has ever run: is run_due_tasks in cron or a systemd timer?")
        elif (silence := report.now - report.last_batch.finished_at) > limits.max_silence:
            skipped = report.last_lock_held_at
            found.append(
                f"no batch has run for {_minutes(silence)} "
                f"(limit {_minutes(limits.max_silence)}): "
                + (
                    "the runs since found the lock held: is a run stuck on a task?"
                    if skipped is not None and skipped > report.last_batch.finished_at
                    else "is run_due_tasks still running from cron?"
                )
            )
    wait = report.oldest_due_wait
    if limits.max_wait is not None and wait is not None and wait > limits.max_wait:
        found.append(
            f"the oldest due task has waited {_minutes(wait)} (limit {_minutes(limits.max_wait)}): "
            "the backlog is not being drained; raise --max-seconds or run more often"
        )
    count = limits.backlog_batches
    if count is not None and len(report.recent_backlog) >= count:
        window = report.recent_backlog[-count:]
        if all(earlier < later for earlier, later in itertools.pairwise(window)):
            found.append(
                f"the backlog grew across the last {count} batches "
                f"({' -> '.join(map(str, window))} due tasks left)"
            )
    if limits.max_failures is not None and report.failures_in_window > limits.max_failures:
        found.append(
            f"{report.failures_in_window} tasks failed in the last hour "
            f"(limit {limits.max_failures})"
        )
    return found


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def json_ready(value: Any) -> Any:
    """Return value with every datetime inside it as an ISO 8601 string."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_ready(item) for item in value]
    return value
