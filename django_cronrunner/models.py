"""Stored tasks and the batch log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import Q

from cronrunner.store import Status, StopReason
from django_cronrunner.constraints import UniqueWhenSet
from django_cronrunner.errors import TaskCancelled
from django_cronrunner.ids import new_task_id

STATUS_CHOICES = [(status.value, status.value.title()) for status in Status]
STOP_REASON_CHOICES = [(reason.value, reason.value.capitalize()) for reason in StopReason]


#: The error recorded for a task cancelled before it ran.
CANCELLED_PATH = f"{TaskCancelled.__module__}.{TaskCancelled.__qualname__}"

#: The order due tasks are claimed and run in: priority, then due time, then enqueue order.
CLAIM_ORDER = ("-priority", "due_at", "enqueued_at")


def as_list(value: object) -> list[Any]:
    """Return a JSON list column's value, or an empty list if the row holds something else."""
    return list(value) if isinstance(value, list) else []


if TYPE_CHECKING:
    _WrappedCondition = models.ExpressionWrapper[Q]
else:  # Django's class takes no type argument at run time.
    _WrappedCondition = models.ExpressionWrapper


class Selective(_WrappedCondition):
    """Mark a condition as true of few rows, for SQLite's planner (`unlikely()`).

    ANALYZE of an idle queue, where every row has finished, records that a status matches the
    whole table. SQLite's planner then stops seeking READY or RUNNING rows in the index: the
    claim reads every finished row and sorts them, and recovery scans the table, on every run.
    PostgreSQL and MariaDB keep per-value statistics and need no hint.
    """

    def __init__(self, condition: Q) -> None:
        # A wrapped condition goes into WHERE as it is, not compared with True.
        super().__init__(condition, output_field=models.BooleanField())

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        sql, params = compiler.compile(self.expression)
        return f"unlikely({sql})", params


class TaskRecordQuerySet(models.QuerySet["TaskRecord"]):
    def ready(self) -> TaskRecordQuerySet:
        # The two statuses a run looks for every minute, among many finished rows.
        return self.filter(Selective(Q(status=Status.READY)))

    def due(self, now: datetime) -> TaskRecordQuerySet:
        """Ready tasks whose time has come, in the order they are claimed."""
        # enqueued_at breaks ties (tasks deferred to one instant), which the ids cannot: ids
        # made in one millisecond differ only in random bits. Without it, MariaDB and
        # PostgreSQL return ties in arbitrary order.
        return self.ready().filter(due_at__lte=now).order_by(*CLAIM_ORDER)

    def running(self) -> TaskRecordQuerySet:
        return self.filter(Selective(Q(status=Status.RUNNING)))

    def failed(self) -> TaskRecordQuerySet:
        return self.filter(status=Status.FAILED)

    def successful(self) -> TaskRecordQuerySet:
        return self.filter(status=Status.SUCCESSFUL)

    def in_queues(self, queues: Iterable[str] | None) -> TaskRecordQuerySet:
        """Restrict to `queues`; None means every queue."""
        return self if queues is None else self.filter(queue_name__in=sorted(queues))

    def held_by(self, worker_id: str) -> TaskRecordQuerySet:
        return self.running().filter(claimed_by=worker_id)

    def orphaned(self, now: datetime, lock_key: str) -> TaskRecordQuerySet:
        """Running tasks whose lease ran out, or whose run used our lock and so is dead."""
        return self.running().filter(Q(lease_expires_at__lt=now) | Q(claim_lock=lock_key))

    # The verbs below filter on the status they change from, in the UPDATE itself: a row a run
    # claimed meanwhile is left alone, and the count says how many really changed.

    def retry_failed(self, now: datetime) -> int:
        """Queue failed tasks again, due now, keeping their error history; return how many."""
        return self.failed().update(
            status=Status.READY, due_at=now, finished_at=None, cancel_requested_at=None
        )

    def run_now(self, now: datetime) -> int:
        """Make deferred ready tasks due now; return how many."""
        return self.ready().filter(due_at__gt=now).update(due_at=now, run_after=None)

    def cancel_ready(self, now: datetime, reason: str) -> int:
        """Fail ready tasks with a TaskCancelled error saying `reason`; return how many."""
        cancelled = 0
        for pk, errors, attempted_at in self.ready().values_list(
            "pk", "errors", "last_attempted_at"
        ):
            entry = {
                "exception_class_path": CANCELLED_PATH,
                "traceback": f"TaskCancelled: {reason}\n",
                "recorded_at": now.isoformat(),
            }
            # Only as read: a task that ran meanwhile (and failed into a retry) has an error
            # more, which this list would drop; it is left alone and not counted.
            cancelled += (
                self.model.objects.using(self.db)
                .filter(pk=pk, status=Status.READY, last_attempted_at=attempted_at)
                .update(
                    status=Status.FAILED,
                    finished_at=now,
                    errors=[*as_list(errors), entry],
                    unique_key=None,
                )
            )
        return cancelled

    def request_stop(self, now: datetime) -> int:
        """Ask running tasks to stop; return how many had not been asked yet."""
        return (
            self.running().filter(cancel_requested_at__isnull=True).update(cancel_requested_at=now)
        )

    def deletable(self) -> TaskRecordQuerySet:
        """Rows that may be deleted: all but those a run is working on."""
        return self.exclude(status=Status.RUNNING)


class TaskRecord(models.Model):
    """One enqueued task and, once it ran, its outcome."""

    id = models.UUIDField(primary_key=True, default=new_task_id, editable=False)
    backend_name = models.CharField(max_length=100)
    task_path = models.CharField(max_length=255)
    queue_name = models.CharField(max_length=100, default="default")
    priority = models.SmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=Status.READY)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    run_after = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(help_text="When the task may run: run_after, or when enqueued.")
    enqueued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    return_value = models.JSONField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True)
    worker_ids = models.JSONField(default=list, blank=True)
    max_attempts = models.PositiveSmallIntegerField(
        default=1, help_text="Attempts allowed, from the task's retry policy when it was enqueued."
    )
    claimed_by = models.CharField(max_length=64, null=True, blank=True)
    claimed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the run in claimed_by claimed it: with claimed_by, it names the claim "
        "that every write of the run checks.",
    )
    claim_lock = models.CharField(max_length=64, null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    schedule_name = models.CharField(max_length=200, null=True, blank=True)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    unique_key = models.CharField(
        max_length=80,
        null=True,
        blank=True,
        help_text="Set while an equal enqueue must not store a second row (unique tasks).",
    )
    concurrency_key = models.CharField(max_length=255, null=True, blank=True)
    concurrency_limit = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="At most this many tasks of the key run at once."
    )
    concurrency_slot = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The slot of its key this task holds while it runs."
    )
    cancel_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="When a stop was asked of the running task."
    )

    objects = TaskRecordQuerySet.as_manager()

    class Meta:
        db_table = "cronrunner_task"
        verbose_name = "task result"
        indexes = [
            # Serves the claim (status, then the claim order) and the
            # recovery scan of RUNNING rows, so neither grows with finished rows.
            models.Index(fields=["status", *CLAIM_ORDER], name="cronrunner_task_claim"),
            # Serves pruning, which deletes finished rows oldest first, by status.
            models.Index(fields=["status", "finished_at"], name="cronrunner_task_finished"),
        ]
        constraints = [
            # A schedule slot fires exactly once, however many runs race for it. The backend
            # comes last: an index that began with it would tempt SQLite's planner, which
            # knows no better without statistics, to read every row of a backend and sort
            # them for a claim, instead of seeking READY rows in the claim index.
            models.UniqueConstraint(
                fields=["schedule_name", "scheduled_for", "backend_name"],
                name="cronrunner_task_schedule_slot",
            ),
            # The same idea as the slot above, for keys that only matter for a while: the
            # column is set while the rule applies and cleared in the UPDATE that ends it,
            # so the database refuses a second pending task (or a slot past the limit)
            # however many processes race for it.
            UniqueWhenSet(
                fields=["unique_key", "backend_name"],
                condition=Q(unique_key__isnull=False),
                name="cronrunner_task_unique_key",
            ),
            UniqueWhenSet(
                fields=["concurrency_key", "concurrency_slot", "backend_name"],
                condition=Q(concurrency_slot__isnull=False),
                name="cronrunner_task_concurrency_slot",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[status.value for status in Status]),
                name="cronrunner_task_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_path} ({self.status})"

    @property
    def attempts(self) -> int:
        return len(as_list(self.worker_ids))

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class BatchRun(models.Model):
    """The batch log: one row per run of run_due_tasks."""

    worker_id = models.CharField(max_length=64)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    backend_name = models.CharField(max_length=100)
    queues = models.CharField(max_length=255, help_text="Comma-separated, or * for every queue.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration = models.FloatField(help_text="Seconds.")
    max_seconds = models.FloatField()
    max_tasks = models.PositiveIntegerField(null=True, blank=True)
    tasks_run = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    recovered = models.PositiveIntegerField(default=0)
    scheduled = models.PositiveIntegerField(default=0, help_text="Schedule slots enqueued.")
    backlog = models.PositiveIntegerField(
        default=0, help_text="Due tasks left when the run stopped."
    )
    stop_reason = models.CharField(max_length=20, choices=STOP_REASON_CHOICES)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "cronrunner_batch"
        verbose_name = "batch run"
        indexes = [models.Index(fields=["started_at"], name="cronrunner_batch_started")]

    def __str__(self) -> str:
        return f"batch {self.worker_id} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class ScheduleState(models.Model):
    """How far one declared schedule has fired; its declaration lives in settings."""

    backend_name = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    expression = models.CharField(max_length=200, help_text="The cron expression last seen.")
    timezone = models.CharField(max_length=64, help_text="The time zone last seen.")
    checked_until = models.DateTimeField(help_text="Slots up to this instant have been handled.")
    last_slot = models.DateTimeField(null=True, blank=True, help_text="The last slot fired.")
    paused = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "cronrunner_schedule"
        verbose_name = "schedule"
        constraints = [
            models.UniqueConstraint(
                fields=["backend_name", "name"], name="cronrunner_schedule_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name


class TaskDuration(models.Model):
    """How long the recent attempts of one task path took, for budget-aware picking."""

    backend_name = models.CharField(max_length=100)
    task_path = models.CharField(max_length=255)
    samples = models.JSONField(default=list, help_text="Seconds, oldest first.")

    class Meta:
        db_table = "cronrunner_duration"
        verbose_name = "task duration"
        constraints = [
            models.UniqueConstraint(
                fields=["backend_name", "task_path"], name="cronrunner_duration_unique_path"
            )
        ]

    def __str__(self) -> str:
        return self.task_path


class Dashboard(TaskRecord):
    """The admin dashboard's entry in the admin index; it stores nothing of its own."""

    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "dashboard"
