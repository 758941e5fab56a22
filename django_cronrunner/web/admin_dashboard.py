"""The dashboard page, listed in the admin index beside the models."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from django_cronrunner.storage.database_clock import database_now
from django_cronrunner.web.admin_base import BREADCRUMBS_AS_LIST
from django_cronrunner.web.admin_schedules import cronrunner_backends
from django_cronrunner.web.dashboard import dashboard
from django_cronrunner.web.dashboard_metrics import WINDOWS

#: Seconds between the page's reloads (it keeps its scroll position).
REFRESH_SECONDS = 30


def refresh_seconds(asked: str | None) -> int:
    """The reload interval: ?refresh=N (2 to 3600 seconds), else the default."""
    try:
        return min(max(int(asked or REFRESH_SECONDS), 2), 3600)
    except ValueError:
        return REFRESH_SECONDS


class DashboardAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Shows the dashboard to staff who may view task results; it has no rows of its own."""

    class Media:
        css = {"all": ["django_cronrunner/admin.css"]}
        js = ["django_cronrunner/refresh.js"]

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
        requested = request.GET.get("window")
        backends = cronrunner_backends()
        # The page's "as of": the database's time, as each board's own is.
        now = database_now(backends[0].config.database) if backends else timezone.now()
        boards = [
            dashboard(backend, database_now(backend.config.database), requested)
            for backend in backends
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Task runner dashboard",
            "opts": self.model._meta,
            "media": self.media,
            "boards": boards,
            "windows": list(WINDOWS.values()),
            "requested_window": requested if requested in WINDOWS else None,
            "refresh_seconds": refresh_seconds(request.GET.get("refresh")),
            "breadcrumbs_as_list": BREADCRUMBS_AS_LIST,
            "now": now,
        }
        return TemplateResponse(request, "django_cronrunner/dashboard.html", context)
