"""The task results admin: a list an operator can scan, and a page per task with its buttons."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import actions as default_actions
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from cronrunner.store import Status
from django_cronrunner.models import TaskRecord, TaskRecordQuerySet
from django_cronrunner.storage.database_clock import database_now
from django_cronrunner.web.admin_base import OBJECT_TOOLS_IN_CONTENT, ReadOnlyAdmin
from django_cronrunner.web.admin_filters import (
    ExistingValuesFilter,
    FailedWithFilter,
    FinishedSinceFilter,
    StatusFilter,
    count_by_status,
)
from django_cronrunner.web.admin_schedules import schedule_status
from django_cronrunner.web.dashboard_metrics import waited
from django_cronrunner.web.display import (
    STATUS_LABELS,
    seconds,
    short_id,
    status_badge,
    status_kind,
    time_cell,
)
from django_cronrunner.web.task_actions import OPERATIONS, Operation
from django_cronrunner.web.task_page import attempts, timeline


def row_now(record: TaskRecord) -> datetime:
    """Return the database's time, as this process reads it, for a row of that database."""
    return database_now(record._state.db or DEFAULT_DB_ALIAS)


class TaskRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "short_id",
        "path_display",
        "queue_display",
        "status_display",
        "attempts_display",
        "due_display",
        "started_display",
        "finished_display",
        "duration_display",
        "wait_display",
    ]
    list_display_links = ["short_id"]
    list_filter = [
        StatusFilter,
        ("queue_name", ExistingValuesFilter),
        ("task_path", ExistingValuesFilter),
        FailedWithFilter,
        FinishedSinceFilter,
        ("schedule_name", ExistingValuesFilter),
        ("backend_name", ExistingValuesFilter),
    ]
    search_fields = ["id", "task_path"]
    ordering = ["-enqueued_at"]
    readonly_fields = ["arguments", "outcome"]
    fieldsets = [
        (None, {"fields": ["id", "task_path", "status", "queue_name", "priority", "backend_name"]}),
        ("Call", {"fields": ["arguments", "outcome"]}),
        (
            "Times",
            {
                "fields": [
                    "enqueued_at",
                    "run_after",
                    "due_at",
                    "started_at",
                    "last_attempted_at",
                    "finished_at",
                ]
            },
        ),
        ("Schedule", {"fields": ["schedule_name", "scheduled_for"]}),
        ("Claim", {"fields": ["max_attempts", "claimed_by", "claimed_at", "lease_expires_at"]}),
    ]
    actions = ["retry_failed", "cancel_ready", "run_now", "delete_selected"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The actions and buttons need the change permission; a row's edit form never exists.
        return obj is None and admin.ModelAdmin.has_change_permission(self, request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if isinstance(obj, TaskRecord) and obj.status == Status.RUNNING:
            return False  # a run is working on it; deleting it would lose the outcome
        return super().has_delete_permission(request, obj)

    # The list's columns: one line each, the full value on hover.

    @admin.display(description="id", ordering="id")
    def short_id(self, obj: TaskRecord) -> SafeString:
        return format_html('<code title="{}">{}</code>', obj.pk, short_id(obj.pk))

    @admin.display(description="task", ordering="task_path")
    def path_display(self, obj: TaskRecord) -> SafeString:
        module, _, name = obj.task_path.rpartition(".")
        return format_html(
            '<span class="cr-path" title="{}"><span>'
            '<span class="cr-module">{}</span>{}</span></span>',
            obj.task_path,
            f"{module}." if module else "",
            name,
        )

    @admin.display(description="queue", ordering="queue_name")
    def queue_display(self, obj: TaskRecord) -> str:
        return obj.queue_name

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: TaskRecord) -> SafeString:
        return status_badge(status_kind(obj.status, obj.due_at, row_now(obj)))

    @admin.display(description="tries")
    def attempts_display(self, obj: TaskRecord) -> str:
        return f"{obj.attempts}/{obj.max_attempts}"

    @admin.display(description="due", ordering="due_at")
    def due_display(self, obj: TaskRecord) -> SafeString | str:
        return time_cell(obj.due_at, row_now(obj))

    @admin.display(description="started", ordering="started_at")
    def started_display(self, obj: TaskRecord) -> SafeString | str:
        return time_cell(obj.started_at, row_now(obj))

    @admin.display(description="finished", ordering="finished_at")
    def finished_display(self, obj: TaskRecord) -> SafeString | str:
        return time_cell(obj.finished_at, row_now(obj))

    @admin.display(description="took")
    def duration_display(self, obj: TaskRecord) -> str:
        return seconds(obj.duration)

    @admin.display(description="wait")
    def wait_display(self, obj: TaskRecord) -> str:
        if obj.last_attempted_at is None:
            return "-"
        return seconds(waited(obj.due_at, obj.last_attempted_at))

    # The task's page.

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

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {**(extra_context or {}), "status_counts": self.status_counts(request)}
        return super().changelist_view(request, context)

    def status_counts(self, request: HttpRequest) -> list[dict[str, Any]]:
        """Count the rows of each status (ready split into due and deferred), with links."""
        counts = count_by_status(self.get_queryset(request))
        url = reverse("admin:django_cronrunner_taskrecord_changelist")
        return [
            {
                "key": key,
                "badge": status_badge(key),
                "count": counts[key],
                "url": f"{url}?{urlencode({StatusFilter.parameter_name: key})}",
            }
            for key in STATUS_LABELS
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        record = self.get_object(request, object_id)
        context = {**(extra_context or {}), "object_tools_in_content": OBJECT_TOOLS_IN_CONTENT}
        if record is not None:
            now = row_now(record)
            rows = attempts(record)
            allowed = self.has_change_permission(request)
            context.update(
                record=record,
                status_badge=self.status_display(record),
                attempt_rows=rows,
                events=timeline(record, rows),
                buttons=[
                    operation
                    for operation in OPERATIONS.values()
                    if allowed and operation.applies_to(record, now)
                ],
                schedule=(
                    None
                    if record.schedule_name is None
                    else schedule_status(record.backend_name, record.schedule_name, now)
                ),
            )
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[URLPattern]:
        operate = self.admin_site.admin_view(self.operate_view)
        return [
            path(
                "<path:object_id>/do/<str:operation>/",
                operate,
                name="django_cronrunner_taskrecord_operate",
            ),
            *super().get_urls(),
        ]

    def operate_view(self, request: HttpRequest, object_id: str, operation: str) -> HttpResponse:
        """A task page's button: apply one operation to this task (POST, change permission)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        chosen = OPERATIONS.get(operation)
        if chosen is None:
            raise PermissionDenied
        record = get_object_or_404(self.get_queryset(request), pk=object_id)
        rows = TaskRecord.objects.using(record._state.db).filter(pk=record.pk)
        self._apply(request, chosen, rows)
        return HttpResponseRedirect(
            reverse("admin:django_cronrunner_taskrecord_change", args=[record.pk])
        )

    # The list's actions: the same operations as the buttons.

    @admin.action(description="Retry the selected failed tasks now", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: TaskRecordQuerySet) -> None:
        self._apply(request, OPERATIONS["retry"], queryset)

    @admin.action(
        description="Cancel the selected ready tasks; ask running ones to stop",
        permissions=["change"],
    )
    def cancel_ready(self, request: HttpRequest, queryset: TaskRecordQuerySet) -> None:
        self._apply(request, OPERATIONS["cancel"], queryset)

    @admin.action(
        description="Run the selected deferred tasks at the next run", permissions=["change"]
    )
    def run_now(self, request: HttpRequest, queryset: TaskRecordQuerySet) -> None:
        self._apply(request, OPERATIONS["run_now"], queryset)

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

    def _apply(
        self, request: HttpRequest, operation: Operation, queryset: TaskRecordQuerySet
    ) -> None:
        selected = len(queryset)
        changed = operation(queryset, str(request.user))
        skipped = selected - changed
        note = (
            f"; {skipped} skipped: they {operation.why_not} (or a run took them meanwhile)"
            if skipped
            else ""
        )
        level = messages.SUCCESS if changed and not skipped else messages.WARNING
        self.message_user(request, f"{changed} task(s) {operation.verb}{note}.", level)


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
