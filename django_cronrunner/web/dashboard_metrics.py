"""What the dashboard measures: its window, throughput and wait per queue, failures by kind."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, Q, QuerySet

from cronrunner.store import Status
from django_cronrunner.models import BatchRun, TaskRecordQuerySet
from django_cronrunner.web.last_error import LastErrorClass


@dataclass(frozen=True, slots=True)
class Window:
    """A span of history shown as a chart of equal buckets."""

    name: str
    span: timedelta
    bucket: timedelta
    label: str
    bucket_label: str
    start_label: str

    @property
    def buckets(self) -> int:
        return int(self.span / self.bucket)


WINDOWS = {
    window.name: window
    for window in (
        Window(
            "hour", timedelta(hours=1), timedelta(minutes=1), "last hour", "minute", "an hour ago"
        ),
        Window(
            "day",
            timedelta(days=1),
            timedelta(minutes=15),
            "last 24 hours",
            "15 minutes",
            "24 hours ago",
        ),
        Window("week", timedelta(days=7), timedelta(hours=1), "last 7 days", "hour", "7 days ago"),
    )
}
#: Rows read for the wait percentiles: enough to be right, bounded in cost.
SAMPLE_ROWS = 20_000
#: History shorter than an hour is shown in a window this much longer than it, at the least.
RECENT_STEP = timedelta(minutes=5)


def recent_window(age: timedelta) -> Window:
    """A window of minutes that starts just before the oldest batch, so that a few minutes of
    history fill the chart rather than crowd the right end of an hour."""
    steps = max(math.ceil(age / RECENT_STEP), 1)
    minutes = int(steps * RECENT_STEP.total_seconds() // 60)
    return Window(
        "recent",
        steps * RECENT_STEP,
        timedelta(minutes=1),
        f"last {minutes} minutes",
        "minute",
        f"{minutes} minutes ago",
    )


def choose_window(oldest: datetime | None, now: datetime, requested: str | None = None) -> Window:
    """The window asked for by name, else the smallest that holds the history there is."""
    if requested in WINDOWS:
        return WINDOWS[requested]
    if oldest is not None and now - oldest <= WINDOWS["hour"].span - RECENT_STEP:
        return recent_window(now - oldest)
    for window in WINDOWS.values():
        if oldest is None or now - oldest <= window.span:
            return window
    return WINDOWS["week"]


def oldest_batch(batches: QuerySet[BatchRun], now: datetime) -> datetime | None:
    """When the oldest batch of the last week started."""
    recent = batches.filter(started_at__gte=now - WINDOWS["week"].span)
    oldest: datetime | None = recent.aggregate(oldest=Min("started_at"))["oldest"]
    return oldest


def waited(due_at: datetime, attempted_at: datetime) -> float:
    """Seconds from when a task was due to when its attempt started (0 if it started early)."""
    return max((attempted_at - due_at).total_seconds(), 0.0)


def budget_share(duration: float, max_seconds: float) -> float:
    """The share of its budget a batch used, 0 to 1."""
    return 0.0 if max_seconds <= 0 else min(duration / max_seconds, 1.0)


def percentile(ordered: list[float], share: float) -> float | None:
    """The nearest-rank percentile of sorted values (share 0.5 is the median)."""
    if not ordered:
        return None
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class QueueFlow:
    """How many of one queue's tasks finished in the window, and how long they waited."""

    queue_name: str
    finished: int
    failed: int
    per_hour: float
    wait_p50: float | None
    wait_p95: float | None
    sampled: int


def queue_flow(tasks: TaskRecordQuerySet, start: datetime, span: timedelta) -> list[QueueFlow]:
    """Throughput and the wait between due and start (p50, p95) of each queue since start.

    The wait is that of a task's latest attempt: a retry is due again when its backoff ends.
    """
    counts = {
        row["queue_name"]: row
        for row in tasks.filter(finished_at__gte=start)
        .values("queue_name")
        .annotate(finished=Count("pk"), failed=Count("pk", filter=Q(status=Status.FAILED)))
        .order_by("queue_name")
    }
    waits: dict[str, list[float]] = defaultdict(list)
    attempted = (
        tasks.filter(last_attempted_at__gte=start)
        .order_by("-last_attempted_at")
        .values_list("queue_name", "due_at", "last_attempted_at")[:SAMPLE_ROWS]
    )
    for queue, due_at, attempted_at in attempted:
        assert attempted_at is not None  # filtered on above
        waits[queue].append(waited(due_at, attempted_at))
    hours = span.total_seconds() / 3600
    flows = []
    for queue in sorted(set(counts) | set(waits)):
        ordered = sorted(waits[queue])
        done = counts.get(queue, {"finished": 0, "failed": 0})
        flows.append(
            QueueFlow(
                queue_name=queue,
                finished=done["finished"],
                failed=done["failed"],
                per_hour=done["finished"] / hours,
                wait_p50=percentile(ordered, 0.5),
                wait_p95=percentile(ordered, 0.95),
                sampled=len(ordered),
            )
        )
    return flows


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failed tasks of one path whose last attempt raised one exception class."""

    task_path: str
    exception_class_path: str
    count: int
    last_at: datetime


def failure_groups(tasks: TaskRecordQuerySet, start: datetime) -> list[FailureGroup]:
    """Group the tasks that failed since start by task path and exception class, most first."""
    rows = (
        tasks.failed()
        .filter(finished_at__gte=start)
        .annotate(error_class=LastErrorClass())
        .values("task_path", "error_class")
        .annotate(count=Count("pk"), last_at=Max("finished_at"))
        .order_by()
    )
    groups = [
        FailureGroup(row["task_path"], row["error_class"] or "", row["count"], row["last_at"])
        for row in rows
    ]
    # Sorted here: databases disagree on where NULL (no error recorded) sorts.
    return sorted(groups, key=lambda g: (-g.count, g.task_path, g.exception_class_path))


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bar of the chart: the batches that started in one bucket of the window."""

    start: datetime
    batches: int
    tasks_run: int
    failed: int
    most_budget_used: float  # the largest share of its budget a batch used, 0 to 1


def batch_buckets(batches: QuerySet[BatchRun], window: Window, now: datetime) -> list[Bucket]:
    """Sum the batches of the window into its buckets, oldest first (empty buckets included)."""
    start = now - window.span
    rows = (
        batches.filter(started_at__gte=start)
        .values_list("started_at", "tasks_run", "failed", "duration", "max_seconds")
        .order_by("started_at")
    )
    count = window.buckets
    sums = [[0, 0, 0, 0.0] for _ in range(count)]
    for started_at, tasks_run, failed, duration, max_seconds in rows:
        index = min(int((started_at - start) / window.bucket), count - 1)
        used = budget_share(duration, max_seconds)
        bucket = sums[index]
        bucket[0] += 1
        bucket[1] += tasks_run
        bucket[2] += failed
        bucket[3] = max(bucket[3], used)
    return [
        Bucket(start + window.bucket * n, int(b[0]), int(b[1]), int(b[2]), float(b[3]))
        for n, b in enumerate(sums)
    ]
