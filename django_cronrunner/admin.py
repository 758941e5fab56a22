"""Read-only admin pages for stored tasks and the batch log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from django_cronrunner.models import BatchRun, TaskRecord


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
