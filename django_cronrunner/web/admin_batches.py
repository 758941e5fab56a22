"""The batch log admin: why each run stopped, what it did, and how much of its budget it used."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_cronrunner.models import BatchRun
from django_cronrunner.storage.database_clock import database_now
from django_cronrunner.web.admin_base import ReadOnlyAdmin
from django_cronrunner.web.admin_filters import ExistingValuesFilter
from django_cronrunner.web.dashboard_metrics import budget_share
from django_cronrunner.web.display import time_cell


def budget_meter(duration: float, max_seconds: float) -> SafeString:
    """A bar of the share of its budget a batch used, with the figures beside it."""
    share = budget_share(duration, max_seconds)
    return format_html(
        '<span class="cr-meter" title="{}% of the budget"><span style="width: {}%"></span></span>'
        " {} s of {} s",
        f"{share * 100:.0f}",
        f"{share * 100:.1f}",
        f"{duration:.1f}",
        f"{max_seconds:g}",
    )


def tasks_and_failures(tasks_run: int, failed: int) -> str:
    """The tasks a batch ran, and how many of them failed when some did."""
    return f"{tasks_run} ({failed} failed)" if failed else str(tasks_run)


class BatchRunAdmin(ReadOnlyAdmin):
    # The columns fit 1280 px beside the navigation and the filters; a batch's page has all.
    list_display = [
        "started",
        "host",
        "stopped",
        "tasks",
        "recovered",
        "backlog",
        "budget_used",
    ]
    list_display_links = ["started"]
    list_filter = ["stop_reason", ("host", ExistingValuesFilter)]
    ordering = ["-started_at"]

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: BatchRun) -> SafeString | str:
        return time_cell(obj.started_at, database_now(obj._state.db or "default"))

    @admin.display(description="stopped", ordering="stop_reason")
    def stopped(self, obj: BatchRun) -> str:
        return obj.get_stop_reason_display()

    @admin.display(description="tasks run", ordering="tasks_run")
    def tasks(self, obj: BatchRun) -> str:
        return tasks_and_failures(obj.tasks_run, obj.failed)

    @admin.display(description="duration / budget")
    def budget_used(self, obj: BatchRun) -> SafeString:
        return budget_meter(obj.duration, obj.max_seconds)
