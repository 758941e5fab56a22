"""Is one crontab line enough? Arrival and drain rates, each line's budget and backlog, advice."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Sum

from cronrunner.durations import percentile
from cronrunner.store import Status, StopReason
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.models import BatchRun, TaskDuration, TaskRecord
from django_cronrunner.operations.capacity_advice import Recommendation, recommend
from django_cronrunner.operations.health import health, json_ready

WINDOW = timedelta(hours=1)
#: A backlog is called growing only across at least this many runs of its line.
TREND_RUNS = 3
#: How the batch log spells a run without --queue: it takes every queue.
EVERY_QUEUE = "*"


@dataclass(frozen=True, slots=True)
class QueueFlow:
    """How fast one queue's tasks came due and were finished over the window."""

    queue: str
    arrived: int
    drained: int
    busy_seconds: float
    due_now: int
    window_minutes: float

    @property
    def arrival_per_minute(self) -> float:
        return self.arrived / self.window_minutes

    @property
    def drain_per_minute(self) -> float:
        return self.drained / self.window_minutes

    @property
    def mean_seconds(self) -> float:
        return self.busy_seconds / self.drained if self.drained else 0.0

    @property
    def work_per_minute(self) -> float:
        """Seconds of running time the tasks arriving each minute need."""
        return self.arrival_per_minute * self.mean_seconds


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """How runs spent their budget."""

    runs: int
    budget_spent: int
    lock_held: int
    seconds_used: float
    seconds_allowed: float

    @property
    def share(self) -> float:
        return self.seconds_used / self.seconds_allowed if self.seconds_allowed else 0.0


@dataclass(frozen=True, slots=True)
class CronLine:
    """The runs of one crontab line in the window, told apart by the queues they take."""

    #: As the batch log stores them: "*" (no --queue) or the queue names, comma-separated.
    queues: str
    budget: BudgetUse
    #: The --max-seconds of the line's latest run that took the lock.
    max_seconds: float | None
    #: The usual time between two starts of the line on one host.
    interval_seconds: float | None
    #: Due tasks each run that took the lock left behind, oldest first (0: it drained them).
    backlog: list[int]
    #: The backlog's fitted change per minute across the window; None under two runs.
    backlog_per_minute: float | None

    @property
    def label(self) -> str:
        return "without --queue" if self.takes_every_queue else f"--queue {self.queues}"

    @property
    def queue_names(self) -> frozenset[str]:
        return frozenset() if self.takes_every_queue else frozenset(self.queues.split(","))

    @property
    def takes_every_queue(self) -> bool:
        return self.queues == EVERY_QUEUE

    def serves(self, queue: str) -> bool:
        return self.takes_every_queue or queue in self.queue_names

    @property
    def growing(self) -> bool:
        """Say whether the backlog really rose: every run of the last third of the window's
        left more due tasks than any run of the first third did."""
        if len(self.backlog) < TREND_RUNS:
            return False
        third = len(self.backlog) // 3
        return min(self.backlog[-third:]) > max(self.backlog[:third])

    @property
    def minutes_to_clear(self) -> float | None:
        """Minutes until the last run's backlog is gone at the fitted rate; None if never."""
        left = self.backlog[-1] if self.backlog else 0
        if left == 0:
            return 0.0
        slope = self.backlog_per_minute
        return left / -slope if slope is not None and slope < 0 else None


@dataclass(frozen=True, slots=True)
class PathDuration:
    task_path: str
    p95_seconds: float
    attempts: int
    #: The queues its tasks came due or finished in during the window.
    queues: list[str]


@dataclass(frozen=True, slots=True)
class CapacityReport:
    backend: str
    now: datetime
    window_minutes: float
    queues: list[QueueFlow]
    #: Every run of the window, whatever its line.
    budget: BudgetUse
    lines: list[CronLine]
    paths: list[PathDuration]
    recommendations: list[Recommendation] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = json_ready(asdict(self))
        for queue, flow in zip(data["queues"], self.queues, strict=True):
            queue.update(
                arrival_per_minute=round(flow.arrival_per_minute, 3),
                drain_per_minute=round(flow.drain_per_minute, 3),
            )
        data["budget"]["share"] = round(self.budget.share, 3)
        for line, cron_line in zip(data["lines"], self.lines, strict=True):
            line["budget"]["share"] = round(cron_line.budget.share, 3)
            line.update(growing=cron_line.growing, minutes_to_clear=cron_line.minutes_to_clear)
        return data


def capacity_report(
    backend: CronRunnerBackend, now: datetime, window: timedelta = WINDOW
) -> CapacityReport:
    """Measure the window of history before now and recommend what to change."""
    using = backend.config.database
    start = now - window
    minutes = window.total_seconds() / 60
    tasks = TaskRecord.objects.using(using).filter(backend_name=backend.alias)
    arrived: defaultdict[str, int] = defaultdict(int)
    path_queues: defaultdict[str, set[str]] = defaultdict(set)
    for queue, path, count in (
        tasks.filter(due_at__gt=start, due_at__lte=now)
        .values("queue_name", "task_path")
        .annotate(n=Count("pk"))
        .values_list("queue_name", "task_path", "n")
    ):
        arrived[queue] += count
        path_queues[path].add(queue)
    running_time = ExpressionWrapper(
        F("finished_at") - F("last_attempted_at"), output_field=DurationField()
    )
    drained: defaultdict[str, tuple[int, timedelta]] = defaultdict(lambda: (0, timedelta()))
    for row in (
        tasks.filter(
            status__in=[Status.SUCCESSFUL, Status.FAILED],
            finished_at__gt=start,
            finished_at__lte=now,
            last_attempted_at__isnull=False,
        )
        .values("queue_name", "task_path")
        .annotate(n=Count("pk"), busy=Sum(running_time))
        .order_by("queue_name", "task_path")
    ):
        count, busy = drained[row["queue_name"]]
        drained[row["queue_name"]] = (count + row["n"], busy + (row["busy"] or timedelta()))
        path_queues[row["task_path"]].add(row["queue_name"])
    due_now = {queue.queue_name: queue.due for queue in health(backend, now).queues}
    queues = [
        QueueFlow(
            queue=name,
            arrived=arrived[name],
            drained=drained[name][0],
            busy_seconds=drained[name][1].total_seconds(),
            due_now=due_now.get(name, 0),
            window_minutes=minutes,
        )
        for name in sorted({*arrived, *drained, *due_now})
    ]
    rows: list[Mapping[str, Any]] = list(
        BatchRun.objects.using(using)
        .filter(backend_name=backend.alias, started_at__gt=start, started_at__lte=now)
        .order_by("started_at")
        .values("queues", "host", "started_at", "duration", "max_seconds", "stop_reason", "backlog")
    )
    lines = [
        cron_line(name, list(line_rows))
        for name, line_rows in itertools.groupby(
            sorted(rows, key=lambda row: row["queues"]), key=lambda row: row["queues"]
        )
    ]
    paths = sorted(
        (
            PathDuration(path, percentile(seconds), len(seconds), sorted(path_queues[path]))
            for path, samples in TaskDuration.objects.using(using)
            .filter(backend_name=backend.alias)
            .values_list("task_path", "samples")
            if (seconds := [float(s) for s in samples if isinstance(s, int | float)])
        ),
        key=lambda path: path.task_path,
    )
    return CapacityReport(
        backend=backend.alias,
        now=now,
        window_minutes=minutes,
        queues=queues,
        budget=budget_use(rows),
        lines=lines,
        paths=paths,
        recommendations=recommend(queues, lines, paths),
    )


def budget_use(rows: Sequence[Mapping[str, Any]]) -> BudgetUse:
    """Sum up batch log rows (as dicts) into the budget their runs used."""
    worked = [row for row in rows if row["stop_reason"] != StopReason.LOCK_HELD]
    return BudgetUse(
        runs=len(worked),
        budget_spent=sum(row["stop_reason"] == StopReason.BUDGET_SPENT for row in worked),
        lock_held=len(rows) - len(worked),
        seconds_used=sum(row["duration"] for row in worked),
        seconds_allowed=sum(row["max_seconds"] for row in worked),
    )


def cron_line(queues: str, rows: Sequence[Mapping[str, Any]]) -> CronLine:
    """Measure one line from its batch log rows, in the order they started."""
    worked = [row for row in rows if row["stop_reason"] != StopReason.LOCK_HELD]
    # Every start counts, a skipped one too: it is how often cron starts the line. Starts are
    # paired per host, as each host's cron starts its own copy of the line.
    gaps = [
        (later["started_at"] - earlier["started_at"]).total_seconds()
        for _, host_rows in itertools.groupby(
            sorted(rows, key=lambda row: row["host"]), key=lambda row: row["host"]
        )
        for earlier, later in itertools.pairwise(host_rows)
    ]
    slope = None
    if len(worked) >= 2:
        first = worked[0]["started_at"]
        slope = statistics.linear_regression(
            [(row["started_at"] - first).total_seconds() / 60 for row in worked],
            [float(row["backlog"]) for row in worked],
        ).slope
    return CronLine(
        queues=queues,
        budget=budget_use(rows),
        max_seconds=worked[-1]["max_seconds"] if worked else None,
        interval_seconds=statistics.median(gaps) if gaps else None,
        backlog=[row["backlog"] for row in worked],
        backlog_per_minute=slope,
    )


def describe_capacity(report: CapacityReport) -> list[str]:
    """Lay the report out for a terminal."""
    lines = [
        f"Capacity of backend {report.backend!r} over the last {report.window_minutes:g} minutes:"
    ]
    if not report.queues:
        lines.append("  no task came due or finished")
    lines.extend(
        f"  queue {queue.queue}: {queue.arrival_per_minute:.2f} arrived/min, "
        f"{queue.drain_per_minute:.2f} drained/min, {queue.due_now} due now"
        for queue in report.queues
    )
    if not report.lines:
        lines.append("  runs: none in the window")
    lines.extend(describe_line(line) for line in report.lines)
    lines.extend(
        f"  {path.task_path}: p95 {path.p95_seconds:.1f}s over {path.attempts} attempts"
        for path in report.paths
    )
    if report.recommendations:
        lines.append("Recommendations:")
        lines.extend(f"  - {recommendation}" for recommendation in report.recommendations)
    elif report.lines:
        lines.append("No recommendation: the runs keep up.")
    else:
        lines.append("No recommendation: no run in the window, and no task is due.")
    return lines


def describe_line(line: CronLine) -> str:
    """Say in one line how a crontab line's runs went."""
    budget = line.budget
    text = (
        f"  line {line.label}: {budget.runs} run{'' if budget.runs == 1 else 's'} "
        f"({budget.budget_spent} spent their budget, "
        f"{budget.lock_held} found the lock held)"
    )
    if line.max_seconds is None:
        return text
    text += f", --max-seconds {line.max_seconds:g}, {budget.share:.0%} of it used"
    if line.interval_seconds:
        text += f", one every {line.interval_seconds:.0f}s"
    first, last = line.backlog[0], line.backlog[-1]
    text += f"; due tasks left {first} -> {last}"
    clear = line.minutes_to_clear
    if line.growing:
        return text + ", growing"
    if clear is None:
        return text + ", not shrinking"
    return text + (f", clears in {clear:.0f} min" if clear else "")
