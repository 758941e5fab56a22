"""The task list's filters: only values the rows have, statuses as the badges name them, the
exception class of the last attempt, and a start instant for the dashboard's links."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cronrunner.store import Status
from django_cronrunner.models import TaskRecord
from django_cronrunner.storage.database_clock import database_now
from django_cronrunner.web.display import STATUS_LABELS
from django_cronrunner.web.last_error import LastErrorClass

#: How many recent failures the exception filter reads its choices from.
RECENT_FAILED_ROWS = 1000
#: The exception filter's value for failed tasks that recorded no error.
NO_ERROR = "none"


def status_conditions(now: datetime) -> dict[str, Q]:
    """The rows of each of STATUS_LABELS at `now`."""
    return {
        "due": Q(status=Status.READY, due_at__lte=now),
        "deferred": Q(status=Status.READY, due_at__gt=now),
        "running": Q(status=Status.RUNNING),
        "successful": Q(status=Status.SUCCESSFUL),
        "failed": Q(status=Status.FAILED),
    }


def count_by_status(queryset: QuerySet[TaskRecord]) -> dict[str, int]:
    """Count the rows of each of STATUS_LABELS, in one query, at the database's time."""
    conditions = status_conditions(database_now(queryset.db))
    counts: dict[str, int] = queryset.aggregate(
        **{key: Count("pk", filter=condition) for key, condition in conditions.items()}
    )
    return counts


class ExistingValuesFilter(admin.AllValuesFieldListFilter):
    """Django's all-values filter without the empty choice, shown only when it can narrow.

    A nullable column such as schedule_name otherwise offers a lone "-" when no row has a
    value, and a column with one value (one backend, one queue) offers a filter that filters
    nothing.
    """

    def values(self) -> list[Any]:
        return [value for value in self.lookup_choices if value is not None]

    def has_output(self) -> bool:
        values = self.values()
        some_empty = len(values) < len(list(self.lookup_choices))
        return len(values) > 1 or (len(values) == 1 and some_empty)

    def choices(self, changelist: Any) -> Iterator[Any]:
        for choice in super().choices(changelist):
            if choice["display"] != self.empty_value_display:
                yield choice


class StatusFilter(admin.SimpleListFilter):
    """The statuses some row has, named and split (due, deferred) as the badges are."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        counts = count_by_status(model_admin.get_queryset(request))
        selected = self.value()
        return [
            (key, label) for key, label in STATUS_LABELS.items() if counts[key] or key == selected
        ]

    def has_output(self) -> bool:
        # A filter Django does not show drops its parameter unapplied: a chosen one stays.
        return len(self.lookup_choices) > 1 or self.value() is not None

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[TaskRecord]
    ) -> QuerySet[TaskRecord]:
        chosen = self.value()
        if chosen is None:
            return queryset
        conditions = status_conditions(database_now(queryset.db))
        if chosen not in conditions:
            raise IncorrectLookupParameters(f"No status {chosen!r}")
        return queryset.filter(conditions[chosen])


class FinishedSinceFilter(admin.SimpleListFilter):
    """Tasks that finished at or after an instant (`?since=<ISO 8601>`): the dashboard's
    failure links name the start of the window they counted in."""

    title = "finished since"
    parameter_name = "since"

    def instant(self) -> datetime | None:
        """The instant asked for, or None; an unreadable one is the admin's lookup error."""
        value = self.value()
        if not value:
            return None
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise IncorrectLookupParameters(f"Not an instant with its offset: {value!r}")
        return parsed

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        since = self.instant()
        if since is None:
            return []
        return [(str(self.value()), f"{timezone.localtime(since):%Y-%m-%d %H:%M:%S %Z}")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[TaskRecord]
    ) -> QuerySet[TaskRecord]:
        since = self.instant()
        return queryset if since is None else queryset.filter(finished_at__gte=since)


class FailedWithFilter(admin.SimpleListFilter):
    """Failed tasks whose last attempt raised a given exception class (or recorded none)."""

    title = "failed with"
    parameter_name = "error"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        rows = model_admin.get_queryset(request).failed().order_by("-finished_at")
        latest = rows.annotate(error_class=LastErrorClass()).values_list("error_class", flat=True)
        classes = set(latest[:RECENT_FAILED_ROWS])
        selected = self.value()
        if selected:
            classes.add(None if selected == NO_ERROR else selected)
        choices = [(path, path.rsplit(".", 1)[-1]) for path in sorted(c for c in classes if c)]
        if None in classes:
            choices.append((NO_ERROR, "no error recorded"))
        return choices

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[TaskRecord]
    ) -> QuerySet[TaskRecord]:
        path = self.value()
        if not path:
            return queryset
        failed = queryset.filter(status=Status.FAILED).alias(error_class=LastErrorClass())
        if path == NO_ERROR:
            return failed.filter(error_class__isnull=True)
        return failed.filter(error_class=path)
