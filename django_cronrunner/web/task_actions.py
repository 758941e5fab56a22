"""What the admin's task actions and the task page's buttons do, in one place for both.

Each takes the selected rows and returns how many changed, through the public API of
django_cronrunner.control, so the admin does exactly what code calling it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from cronrunner.store import Status
from django_cronrunner import control
from django_cronrunner.models import TaskRecord, TaskRecordQuerySet


def retry(queryset: TaskRecordQuerySet, who: str) -> int:
    """Queue failed tasks again, due now."""
    return control.retry_failed_tasks(queryset)


def cancel(queryset: TaskRecordQuerySet, who: str) -> int:
    """Fail waiting tasks with a TaskCancelled error naming who cancelled them, and ask running
    ones to stop."""
    return control.cancel_tasks(queryset, f"cancelled by {who} in the admin")


def run_now(queryset: TaskRecordQuerySet, who: str) -> int:
    """Make deferred tasks due now."""
    return control.run_deferred_tasks_now(queryset)


@dataclass(frozen=True, slots=True)
class Operation:
    """One thing an operator can do to tasks, as a button and as an action."""

    name: str
    label: str
    verb: str  # "3 task(s) {verb}"
    why_not: str  # "2 skipped: they {why_not}"
    statuses: frozenset[str]
    deferred_only: bool = False
    #: Templates read its fields; they must not call it.
    do_not_call_in_templates: ClassVar[bool] = True

    def applies_to(self, record: TaskRecord, now: datetime) -> bool:
        """Whether the button makes sense for this row as it is now."""
        if record.status not in self.statuses:
            return False
        return not self.deferred_only or record.due_at > now

    def __call__(self, queryset: TaskRecordQuerySet, who: str) -> int:
        return FUNCTIONS[self.name](queryset, who)


FUNCTIONS = {"retry": retry, "cancel": cancel, "run_now": run_now}

OPERATIONS = {
    operation.name: operation
    for operation in (
        Operation(
            "retry",
            "Retry",
            "queued again",
            "were not failed, or an equal unique task is pending",
            frozenset({Status.FAILED}),
        ),
        Operation(
            "cancel",
            "Cancel",
            "cancelled or asked to stop",
            "were neither waiting nor running",
            frozenset({Status.READY, Status.RUNNING}),
        ),
        Operation(
            "run_now",
            "Run now",
            "made due now",
            "were not deferred",
            frozenset({Status.READY}),
            deferred_only=True,
        ),
    )
}
