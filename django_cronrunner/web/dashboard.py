"""The admin dashboard: a chart of recent batches, flow per queue, failures, schedules, problems."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from cronrunner.store import StopReason
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.models import BatchRun, TaskRecord
from django_cronrunner.operations.capacity import capacity_report
from django_cronrunner.operations.health import Limits, health, problems
from django_cronrunner.operations.status import schedule_problems, schedule_statuses
from django_cronrunner.web.dashboard_metrics import (
    Bucket,
    Window,
    batch_buckets,
    choose_window,
    failure_groups,
    oldest_batch,
    queue_flow,
)
from django_cronrunner.web.dashboard_rows import batch_rows, failure_rows, queue_rows, schedule_rows
from django_cronrunner.web.display import seconds

#: The banner's threshold: every-minute runs that stop for this long have stopped.
SILENCE = timedelta(minutes=5)
RECENT_BATCHES = 10
#: The widest bar, in the chart's units: a window of few buckets draws bars, not blocks.
WIDEST_BAR = 40.0


@dataclass(frozen=True, slots=True)
class Bar:
    """One bucket in the chart: its bar (tasks run, the failed part on top) and its dot (the
    largest share of its budget a batch used), centred on the bar."""

    x: float
    width: float
    top: float
    height: float
    failed_height: float
    dot_x: float
    dot_y: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG chart's geometry, in its own units; the template only draws it."""

    width: int
    height: int
    bars: list[Bar]
    most_tasks: int
    window: Window

    @property
    def baseline(self) -> int:
        return self.height


def batch_chart(
    buckets: list[Bucket], window: Window, width: int = 720, height: int = 160
) -> Chart:
    """Draw one bar per bucket of the window: height tasks run, dot the budget used."""
    most = max((bucket.tasks_run for bucket in buckets), default=0)
    slot = width / max(len(buckets), 1)
    bar_width = min(max(slot * 0.8, 1.0), WIDEST_BAR)
    bars = []
    for n, bucket in enumerate(buckets):
        if not bucket.batches:
            continue
        tall = 0.0 if most == 0 else bucket.tasks_run / most * height
        failed = 0.0 if most == 0 else bucket.failed / most * height
        local = timezone.localtime(bucket.start)
        end = timezone.localtime(bucket.start + window.bucket)
        left = n * slot + (slot - bar_width) / 2
        bars.append(
            Bar(
                x=round(left, 2),
                width=round(bar_width, 2),
                top=round(height - tall, 2),
                height=round(tall, 2),
                failed_height=round(failed, 2),
                dot_x=round(left + bar_width / 2, 2),
                dot_y=round(height - bucket.most_budget_used * height, 2),
                label=(
                    f"{local:%a %H:%M}-{end:%H:%M}: {bucket.batches} batch(es), "
                    f"{bucket.tasks_run} tasks ({bucket.failed} failed), "
                    f"at most {bucket.most_budget_used:.0%} of a budget used"
                ),
            )
        )
    return Chart(width=width, height=height, bars=bars, most_tasks=most, window=window)


def dashboard(
    backend: CronRunnerBackend, now: datetime, window_name: str | None = None
) -> dict[str, Any]:
    """Gather what the dashboard shows for one backend."""
    using = backend.config.database
    report = health(backend, now)
    batches = (
        BatchRun.objects.using(using)
        .filter(backend_name=backend.alias)
        .exclude(stop_reason=StopReason.LOCK_HELD)
    )
    window = choose_window(oldest_batch(batches, now), now, window_name)
    start = now - window.span
    buckets = batch_buckets(batches, window, now)
    tasks = TaskRecord.objects.using(using).filter(backend_name=backend.alias)
    failures = failure_groups(tasks, start)
    flows = queue_flow(tasks, start, window.span)
    recent = list(batches.order_by("-started_at")[:RECENT_BATCHES])
    schedules = schedule_statuses(backend, now, upcoming=2)
    capacity = capacity_report(backend, now)
    wait, last = report.oldest_due_wait, report.last_batch
    return {
        "alias": backend.alias,
        "oldest_wait": "none" if wait is None else seconds(wait.total_seconds()),
        "last_batch_ago": (
            "never" if last is None else f"{seconds((now - last.finished_at).total_seconds())} ago"
        ),
        "health": report,
        "capacity": capacity,
        "capacity_share": f"{capacity.budget.share:.0%}",
        "problems": problems(report, Limits(max_silence=SILENCE, backlog_batches=3))
        + schedule_problems(schedules),
        "window": window,
        "chart": batch_chart(buckets, window),
        "batches": sum(bucket.batches for bucket in buckets),
        "flows": flows,
        "queue_rows": queue_rows(report.queues, flows, backend.alias),
        "failures": sum(group.count for group in failures),
        "failure_groups": failures,
        "failure_rows": failure_rows(failures, now, start, backend.alias),
        "batch_rows": batch_rows(recent, now),
        "schedules": schedules,
        "schedule_rows": schedule_rows(schedules, now),
    }
