"""The admin dashboard: recent batches as a chart, backlog, failures, and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from cronrunner.store import StopReason
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.health import Limits, health, problems
from django_cronrunner.models import BatchRun, TaskRecord

WINDOW = timedelta(hours=24)
#: The banner's threshold: every-minute runs that stop for this long have stopped.
SILENCE = timedelta(minutes=5)
RECENT_FAILURES = 10


@dataclass(frozen=True, slots=True)
class Bar:
    """One batch in the chart: its bar (tasks run) and its dot (time used of the budget)."""

    x: float
    width: float
    top: float
    height: float
    dot_y: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG chart's geometry, in its own units; the template only draws it."""

    width: int
    height: int
    bars: list[Bar]
    most_tasks: int

    @property
    def baseline(self) -> int:
        return self.height


def batch_chart(
    batches: list[BatchRun], now: datetime, width: int = 720, height: int = 160
) -> Chart:
    """Place each batch of the last 24 hours by its start: bar height tasks, dot height budget."""
    start = now - WINDOW
    most = max((batch.tasks_run for batch in batches), default=0)
    bar_width = max(width / (WINDOW.total_seconds() / 60), 1.0)  # a minute wide, at least 1
    bars = []
    for batch in batches:
        x = (batch.started_at - start) / WINDOW * (width - bar_width)
        tall = 0.0 if most == 0 else batch.tasks_run / most * height
        used = 0.0 if batch.max_seconds <= 0 else min(batch.duration / batch.max_seconds, 1.0)
        local = timezone.localtime(batch.started_at)
        bars.append(
            Bar(
                x=round(x, 2),
                width=round(bar_width, 2),
                top=round(height - tall, 2),
                height=round(tall, 2),
                dot_y=round(height - used * height, 2),
                label=(
                    f"{local:%H:%M} {batch.host}: {batch.tasks_run} tasks, "
                    f"{batch.duration:.1f} s of {batch.max_seconds:g} s, {batch.stop_reason}"
                ),
            )
        )
    return Chart(width=width, height=height, bars=bars, most_tasks=most)


def dashboard(backend: CronRunnerBackend, now: datetime) -> dict[str, Any]:
    """Gather what the dashboard shows for one backend."""
    using = backend.config.database
    report = health(backend, now)
    batches = list(
        BatchRun.objects.using(using)
        .filter(backend_name=backend.alias, started_at__gte=now - WINDOW)
        .exclude(stop_reason=StopReason.LOCK_HELD)
        .order_by("started_at")
    )
    failed = (
        TaskRecord.objects.using(using)
        .filter(backend_name=backend.alias)
        .failed()
        .filter(finished_at__gte=now - WINDOW)
    )
    return {
        "alias": backend.alias,
        "health": report,
        "problems": problems(report, Limits(max_silence=SILENCE, backlog_batches=3)),
        "chart": batch_chart(batches, now),
        "batches": len(batches),
        "failures": failed.count(),
        "recent_failures": list(failed.order_by("-finished_at")[:RECENT_FAILURES]),
    }
