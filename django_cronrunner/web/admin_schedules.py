"""The schedules admin: each schedule's slots, and the declarations that are invalid."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import InvalidTaskBackend, task_backends
from django_cronrunner.models import ScheduleState
from django_cronrunner.operations.status import ScheduleStatus, local_and_utc, schedule_statuses
from django_cronrunner.storage.database_clock import database_now
from django_cronrunner.web.admin_base import ReadOnlyAdmin
from django_cronrunner.web.admin_filters import ExistingValuesFilter
from django_cronrunner.web.display import schedule_state, time_cell


def cronrunner_backends() -> list[CronRunnerBackend]:
    """Every TASKS backend that is ours."""
    return [backend for backend in task_backends.all() if isinstance(backend, CronRunnerBackend)]


def schedule_status(backend_name: str, name: str, now: datetime) -> ScheduleStatus | None:
    """Describe one schedule, or None when its backend or declaration is gone."""
    try:
        backend = task_backends[backend_name]
    except InvalidTaskBackend:
        return None  # the backend was removed from TASKS; its history stays readable
    if not isinstance(backend, CronRunnerBackend):
        return None
    for status in schedule_statuses(backend, now, upcoming=3):
        if status.name == name:
            return status
    return None


def invalid_schedules() -> list[str]:
    """One line per declared schedule that cannot run, naming its backend and the problem."""
    return [
        f"Backend {backend.alias!r}: {status.error}"
        for backend in cronrunner_backends()
        for status in schedule_statuses(backend, database_now(backend.config.database), upcoming=0)
        if status.error is not None
    ]


class ScheduleStateAdmin(ReadOnlyAdmin):
    list_display = ["name", "cron", "last_fired", "next_slot", "state"]
    list_filter = ["paused", ("backend_name", ExistingValuesFilter)]
    search_fields = ["name"]
    ordering = ["name"]

    actions = ["pause", "resume"]

    def has_pause_permission(self, request: HttpRequest) -> bool:
        """Pausing changes a schedule's row: it needs the change permission the edit form
        (which never exists here) would."""
        opts = self.opts
        codename = get_permission_codename("change", opts)
        return bool(request.user.has_perm(f"{opts.app_label}.{codename}"))

    @admin.action(description="Pause the selected schedules", permissions=["pause"])
    def pause(self, request: HttpRequest, queryset: QuerySet[ScheduleState]) -> None:
        count = queryset.update(paused=True)
        self.message_user(request, f"Paused {count} schedule(s); their slots will not fire.")

    @admin.action(
        description="Resume the selected schedules (skipped slots are not replayed)",
        permissions=["pause"],
    )
    def resume(self, request: HttpRequest, queryset: QuerySet[ScheduleState]) -> None:
        count = queryset.update(paused=False)
        self.message_user(request, f"Resumed {count} schedule(s).")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {**(extra_context or {}), "schedule_problems": invalid_schedules()}
        return super().changelist_view(request, context)

    def _status(self, obj: ScheduleState) -> ScheduleStatus | None:
        return schedule_status(obj.backend_name, obj.name, self._now(obj))

    def _now(self, obj: ScheduleState) -> datetime:
        return database_now(obj._state.db or "default")

    @admin.display(description="cron", ordering="expression")
    def cron(self, obj: ScheduleState) -> SafeString:
        return format_html("<code>{}</code> {}", obj.expression, obj.timezone)

    @admin.display(description="last fired", ordering="last_slot")
    def last_fired(self, obj: ScheduleState) -> SafeString | str:
        slot = obj.last_slot
        title = None if slot is None else local_and_utc(slot, obj.timezone)
        return time_cell(slot, self._now(obj), title)

    @admin.display(description="next slot")
    def next_slot(self, obj: ScheduleState) -> SafeString | str:
        status = self._status(obj)
        if status is None or status.error is not None or not status.next_slots:
            return "-"  # the state column says why
        slot = status.next_slots[0]
        return time_cell(slot, self._now(obj), local_and_utc(slot, status.timezone))

    @admin.display(description="state")
    def state(self, obj: ScheduleState) -> SafeString:
        return schedule_state(self._status(obj), self._now(obj))
