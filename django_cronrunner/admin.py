"""Read-only admin pages for stored tasks and the batch log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import InvalidTaskBackend, task_backends
from django_cronrunner.models import BatchRun, ScheduleState, TaskRecord
from django_cronrunner.status import ScheduleStatus, local_and_utc, schedule_statuses


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TaskRecord)
class TaskRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "task_path",
        "status",
        "queue_name",
        "priority",
        "enqueued_at",
        "started_at",
        "finished_at",
        "attempts",
    ]
    list_filter = ["status", "queue_name", "backend_name"]
    search_fields = ["id", "task_path"]
    ordering = ["-enqueued_at"]


@admin.register(BatchRun)
class BatchRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "host",
        "stop_reason",
        "tasks_run",
        "succeeded",
        "failed",
        "recovered",
        "duration",
        "max_seconds",
    ]
    list_filter = ["stop_reason", "host"]
    ordering = ["-started_at"]


@admin.register(ScheduleState)
class ScheduleStateAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "expression",
        "timezone",
        "last_slot",
        "next_slot",
        "overdue",
        "paused",
    ]
    list_filter = ["paused", "backend_name"]
    search_fields = ["name"]
    ordering = ["name"]

    actions = ["pause", "resume"]

    @admin.action(description="Pause the selected schedules")
    def pause(self, request: HttpRequest, queryset: QuerySet[ScheduleState]) -> None:
        count = queryset.update(paused=True)
        self.message_user(request, f"Paused {count} schedule(s); their slots will not fire.")

    @admin.action(description="Resume the selected schedules (skipped slots are not replayed)")
    def resume(self, request: HttpRequest, queryset: QuerySet[ScheduleState]) -> None:
        count = queryset.update(paused=False)
        self.message_user(request, f"Resumed {count} schedule(s).")

    def _status(self, obj: ScheduleState) -> ScheduleStatus | None:
        try:
            backend = task_backends[obj.backend_name]
        except InvalidTaskBackend:
            return None  # the backend was removed from TASKS; its history stays readable
        if not isinstance(backend, CronRunnerBackend):
            return None
        for status in schedule_statuses(backend, timezone.now(), upcoming=1):
            if status.name == obj.name:
                return status
        return None

    @admin.display(description="next slot")
    def next_slot(self, obj: ScheduleState) -> str:
        status = self._status(obj)
        if status is None or not status.next_slots:
            return "not declared any more" if status is None else "-"
        return local_and_utc(status.next_slots[0], status.timezone)

    @admin.display(description="overdue", boolean=True)
    def overdue(self, obj: ScheduleState) -> bool:
        status = self._status(obj)
        return status is not None and status.overdue
