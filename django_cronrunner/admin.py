"""Admin pages: task results (with their actions), the batch log, schedules, a dashboard."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import actions as default_actions
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from cronrunner.store import Status
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import InvalidTaskBackend, task_backends
from django_cronrunner.dashboard import dashboard
from django_cronrunner.models import (
    BatchRun,
    Dashboard,
    ScheduleState,
    TaskRecord,
    TaskRecordQuerySet,
    as_list,
)
from django_cronrunner.status import ScheduleStatus, local_and_utc, schedule_statuses


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Rows are written by runs only: no add form, no edit form."""

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
        "attempts",
        "enqueued_at",
        "started_at",
        "finished_at",
        "duration_display",
    ]
    list_filter = ["status", "queue_name", "task_path", "schedule_name", "backend_name"]
    search_fields = ["id", "task_path"]
    ordering = ["-enqueued_at"]
    readonly_fields = ["arguments", "outcome", "attempt_history"]
    fieldsets = [
        (None, {"fields": ["id", "task_path", "status", "queue_name", "priority", "backend_name"]}),
        ("Call", {"fields": ["arguments", "outcome", "attempt_history"]}),
        (
            "Times",
            {"fields": ["enqueued_at", "run_after", "due_at", "started_at", "finished_at"]},
        ),
        ("Schedule", {"fields": ["schedule_name", "scheduled_for"]}),
        ("Claim", {"fields": ["max_attempts", "claimed_by", "lease_expires_at"]}),
    ]
    actions = ["retry_failed", "cancel_ready", "run_now", "delete_selected"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The actions below need the change permission; a single row's edit form never exists.
        return obj is None and admin.ModelAdmin.has_change_permission(self, request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if isinstance(obj, TaskRecord) and obj.status == Status.RUNNING:
            return False  # a run is working on it; deleting it would lose the outcome
        return super().has_delete_permission(request, obj)

    @admin.display(description="duration")
    def duration_display(self, obj: TaskRecord) -> str:
        return "-" if obj.duration is None else f"{obj.duration:.2f} s"

    @admin.display(description="arguments")
    def arguments(self, obj: TaskRecord) -> str:
        return format_html(
            "<pre>args = {}\nkwargs = {}</pre>", _pretty(obj.args), _pretty(obj.kwargs)
        )

    @admin.display(description="return value")
    def outcome(self, obj: TaskRecord) -> str:
        if obj.status != Status.SUCCESSFUL:
            return "-"
        return format_html("<pre>{}</pre>", _pretty(obj.return_value))

    @admin.display(description="failed attempts")
    def attempt_history(self, obj: TaskRecord) -> str:
        errors = [error for error in as_list(obj.errors) if isinstance(error, dict)]
        if not errors:
            return "-"
        return format_html_join(
            "",
            "<p><strong>{}</strong> {} {}</p><pre>{}</pre>",
            (
                (
                    error.get("exception_class_path", ""),
                    error.get("worker_id") or "",
                    error.get("recorded_at") or "",
                    error.get("traceback", ""),
                )
                for error in errors
            ),
        )

    @admin.action(description="Retry the selected failed tasks now", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: TaskRecordQuerySet) -> None:
        changed = queryset.retry_failed(timezone.now())
        self._report(request, "queued again", changed, len(queryset), "were not failed")

    @admin.action(description="Cancel the selected ready tasks", permissions=["change"])
    def cancel_ready(self, request: HttpRequest, queryset: TaskRecordQuerySet) -> None:
        reason = f"cancelled by {request.user} in the admin"
        changed = queryset.cancel_ready(timezone.now(), reason)
        self._report(request, "cancelled", changed, len(queryset), "were not waiting to run")

    @admin.action(
        description="Run the selected deferred tasks at the next run", permissions=["change"]
    )
    def run_now(self, request: HttpRequest, queryset: TaskRecordQuerySet) -> None:
        changed = queryset.run_now(timezone.now())
        self._report(request, "made due now", changed, len(queryset), "were not deferred")

    @admin.action(description="Delete the selected task results", permissions=["delete"])
    def delete_selected(
        self, request: HttpRequest, queryset: TaskRecordQuerySet
    ) -> HttpResponse | None:
        running = queryset.running().count()
        if running:
            self.message_user(
                request,
                f"{running} running task(s) are kept: a run is working on them.",
                messages.WARNING,
            )
        # Django's own action: its confirmation page, then delete_queryset below.
        return default_actions.delete_selected(self, request, queryset.deletable())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TaskRecord]) -> None:
        TaskRecord.objects.filter(pk__in=queryset.values("pk")).deletable().delete()

    def _report(
        self, request: HttpRequest, verb: str, changed: int, selected: int, why_not: str
    ) -> None:
        skipped = selected - changed
        note = (
            f"; {skipped} skipped: they {why_not} (or a run took them meanwhile)" if skipped else ""
        )
        level = messages.SUCCESS if changed and not skipped else messages.WARNING
        self.message_user(request, f"{changed} task(s) {verb}{note}.", level)


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


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
        "backlog",
        "budget_used",
    ]
    list_filter = ["stop_reason", "host"]
    ordering = ["-started_at"]

    @admin.display(description="duration / budget")
    def budget_used(self, obj: BatchRun) -> str:
        return f"{obj.duration:.1f} s of {obj.max_seconds:g} s"


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The dashboard page, listed in the admin index beside the models."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm("django_cronrunner.view_taskrecord"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        now = timezone.now()
        boards = [
            dashboard(backend, now)
            for backend in task_backends.all()
            if isinstance(backend, CronRunnerBackend)
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Task runner dashboard",
            "opts": self.model._meta,
            "boards": boards,
        }
        return TemplateResponse(request, "django_cronrunner/dashboard.html", context)


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
