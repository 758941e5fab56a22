"""How the admin pages show times, durations, ids and statuses: short, one line each."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from cronrunner.store import Status
from django_cronrunner.operations.status import ScheduleStatus

#: Characters of the id shown in lists. A version 7 id begins with its creation time, which
#: tasks enqueued together share, so the list shows its random end instead.
SHORT_ID = 8
#: The statuses the pages tell apart, with the label of each one's badge (and filter choice):
#: a ready task is due, or deferred while its due time is still ahead.
STATUS_LABELS = {
    "due": "Due",
    "deferred": "Deferred",
    "running": "Running",
    "successful": "Successful",
    "failed": "Failed",
}


def short_id(task_id: object) -> str:
    """Return the last characters of an id: enough to tell rows apart, and searchable."""
    return str(task_id)[-SHORT_ID:]


def short_time(moment: datetime, now: datetime) -> str:
    """Show an instant in local time, as short as its distance from now allows: the time of
    day today, the weekday and time within a week, else the date (the rest is on hover)."""
    local, today = timezone.localtime(moment), timezone.localtime(now)
    days = abs((local.date() - today.date()).days)
    if days == 0:
        return f"{local:%H:%M:%S}"
    if days < 7:
        return f"{local:%a %H:%M}"
    if local.year == today.year:
        return f"{local:%b %d}"
    return f"{local:%Y-%m-%d}"


def time_cell(moment: datetime | None, now: datetime, title: str | None = None) -> SafeString | str:
    """A `<time>` element with the short form shown and the full instant (or title) on hover."""
    if moment is None:
        return "-"
    local = timezone.localtime(moment)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.isoformat(),
        title or f"{local:%Y-%m-%d %H:%M:%S %Z}",
        short_time(moment, now),
    )


def seconds(value: float | None) -> str:
    """Show a span of seconds at the precision an operator reads it."""
    if value is None:
        return "-"
    value = max(value, 0.0)
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        minutes, rest = divmod(int(value), 60)
        return f"{minutes}m {rest:02d}s"
    if value < 86400 * 2:
        hours, rest = divmod(int(value) // 60, 60)
        return f"{hours}h {rest:02d}m"
    return f"{value / 86400:.1f} d"


def status_kind(status: str, due_at: datetime, now: datetime) -> str:
    """Which of STATUS_LABELS a task is now."""
    if status == Status.READY:
        return "deferred" if due_at > now else "due"
    return status.lower()


def status_badge(status: str, label: str | None = None) -> SafeString:
    """A coloured badge for a task status (its colour comes from the admin's theme)."""
    kind = status.lower()
    return format_html(
        '<span class="cr-badge cr-{}">{}</span>',
        kind,
        label or STATUS_LABELS.get(kind, kind.title()),
    )


def schedule_state(status: ScheduleStatus | None, now: datetime) -> SafeString:
    """A schedule's state as a badge: on time, overdue since a slot, paused, or invalid."""
    if status is None:
        return format_html("{}", "not declared any more")
    if status.error is not None:
        return format_html("{} {}", status_badge("failed", "Invalid"), status.error)
    if status.overdue_slot is not None:
        return format_html(
            "{} since {}", status_badge("failed", "Overdue"), short_time(status.overdue_slot, now)
        )
    if status.paused or not status.enabled:
        return status_badge("deferred", "Paused" if status.paused else "Disabled")
    return status_badge("successful", "On time")
