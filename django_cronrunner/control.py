"""Act on stored tasks by result id: cancel, retry, or make due now. The admin's actions and
buttons call these; so can any code.

Every change is a conditional UPDATE on the status it changes from, so a row that a run
claimed or finished meanwhile is left alone and the answer says so.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db.models import Q

from cronrunner.store import Status
from django_cronrunner.compat import TaskContext, TaskResultDoesNotExist, task_backends
from django_cronrunner.errors import BackendMismatch, TaskCancelled, UniqueKeyError
from django_cronrunner.models import TaskRecord, TaskRecordQuerySet
from django_cronrunner.storage.database_clock import database_now
from django_cronrunner.storage.uniqueness import key_again, requeue_holding_key, unique_paths

if TYPE_CHECKING:
    from django_cronrunner.backend import CronRunnerBackend


class Cancellation(StrEnum):
    """What cancel() did."""

    #: The task was READY: it is FAILED now, with a TaskCancelled error, and never runs.
    CANCELLED = "cancelled"
    #: The task is RUNNING: it was asked to stop (one claimed but not yet started is not
    #: started; a task in a child process is killed within about a second while the database
    #: answers; any other stops when it checks its context).
    STOP_REQUESTED = "stop requested"
    #: The task had already finished (or a stop was already asked): nothing changed.
    NOT_PENDING = "not pending"


def cancel(
    result_id: str, *, reason: str = "cancelled", backend: str | None = None
) -> Cancellation:
    """Cancel the task of `result_id`: a READY one at once, a RUNNING one by asking it to stop."""
    cancelled, stopped = _cancel(_rows(result_id, backend), reason)
    if cancelled:
        return Cancellation.CANCELLED
    if stopped:
        return Cancellation.STOP_REQUESTED
    return Cancellation.NOT_PENDING


def retry(result_id: str, *, backend: str | None = None) -> bool:
    """Queue a FAILED task again, due now, with one more attempt; say whether it was FAILED.

    A unique task takes its key back; if an equal task is pending, raise UniqueKeyError
    naming it, and leave this one FAILED.
    """
    retried, pending = _retry(_rows(result_id, backend))
    if pending:
        raise UniqueKeyError(
            f"Task {result_id} was not queued again: it is unique, and an equal task, "
            f"{pending[0].pk}, is pending."
        )
    return bool(retried)


def run_now(result_id: str, *, backend: str | None = None) -> bool:
    """Make a deferred READY task due now; say whether it was one."""
    return bool(run_deferred_tasks_now(_rows(result_id, backend)))


def cancel_tasks(tasks: TaskRecordQuerySet, reason: str) -> int:
    """Fail every READY task of `tasks` with a TaskCancelled error and ask every RUNNING one to
    stop; return how many of either."""
    return sum(_cancel(tasks, reason))


def _cancel(tasks: TaskRecordQuerySet, reason: str) -> tuple[int, int]:
    """Fail the READY tasks of `tasks` and ask the RUNNING ones to stop; return how many of
    each."""
    now = database_now(tasks.db)
    cancelled = stopped = 0
    while True:
        cancelled += tasks.cancel_ready(now, reason)
        stopped += tasks.request_stop(now)
        # A run that handed a task back (RUNNING to READY) between the two UPDATEs, or claimed
        # one, left it to neither: try again while any is still pending and not asked to stop.
        if not tasks.filter(
            Q(status=Status.READY) | Q(status=Status.RUNNING, cancel_requested_at__isnull=True)
        ).exists():
            return cancelled, stopped


def cancel_ready_tasks(tasks: TaskRecordQuerySet, reason: str) -> int:
    """Fail every READY task of `tasks` with a TaskCancelled error; return how many."""
    return tasks.cancel_ready(database_now(tasks.db), reason)


def retry_failed_tasks(tasks: TaskRecordQuerySet) -> int:
    """Queue every FAILED task of `tasks` again, due now; return how many. Unique tasks take
    their keys back; one whose equal task is pending stays FAILED, and is not counted."""
    return _retry(tasks)[0]


def _retry(tasks: TaskRecordQuerySet) -> tuple[int, list[TaskRecord]]:
    """Queue the FAILED tasks of `tasks` again; return how many, and the pending tasks that
    kept equal unique ones FAILED."""
    now = database_now(tasks.db)
    paths = tasks.failed().order_by().values_list("task_path", flat=True).distinct()
    unique = unique_paths(list(paths))
    # Every key first: a key callable that raises changes nothing.
    keyed = [
        (record, key_again(record))
        for record in tasks.failed()
        .filter(task_path__in=sorted(unique))
        .only("pk", "backend_name", "task_path", "args", "kwargs")
    ]
    retried = tasks.exclude(task_path__in=sorted(unique)).retry_failed(now)
    pending: list[TaskRecord] = []
    for record, key in keyed:
        row = tasks.filter(pk=record.pk)
        if key is None:
            retried += row.retry_failed(now)
            continue
        requeued, holder = requeue_holding_key(
            tasks.db, record, key, functools.partial(row.retry_failed, now)
        )
        retried += requeued
        if holder is not None:
            pending.append(holder)
    return retried, pending


def run_deferred_tasks_now(tasks: TaskRecordQuerySet) -> int:
    """Make every deferred READY task of `tasks` due now; return how many."""
    return tasks.run_now(database_now(tasks.db))


def cancel_requested(result_id: str, *, backend: str | None = None) -> bool:
    """Say whether a stop was asked of the task of `result_id` while it runs."""
    return _rows(result_id, backend).filter(cancel_requested_at__isnull=False).exists()


if TYPE_CHECKING:  # django.tasks classes are generic only in the type stubs
    _ContextBase = TaskContext[Any, Any]
else:
    _ContextBase = TaskContext


class CronRunnerTaskContext(_ContextBase):
    """The TaskContext our tasks receive, which can also tell of a requested cancellation."""

    __slots__ = ()

    def cancel_requested(self) -> bool:
        """Say whether cancel() asked this task to stop (one query)."""
        result = self.task_result
        return cancel_requested(result.id, backend=result.backend)

    def raise_if_cancelled(self) -> None:
        """Raise TaskCancelled if cancel() asked this task to stop: the attempt then fails
        with it, and is not retried."""
        if self.cancel_requested():
            raise TaskCancelled(f"Task {self.task_result.id} was asked to stop.")


def _backend(alias: str | None) -> CronRunnerBackend:
    from django_cronrunner.backend import CronRunnerBackend

    chosen = task_backends[alias or "default"]
    if not isinstance(chosen, CronRunnerBackend):
        raise BackendMismatch(
            f"TASKS[{chosen.alias!r}] uses {type(chosen).__name__}, not CronRunnerBackend."
        )
    return chosen


def _rows(result_id: str, alias: str | None) -> TaskRecordQuerySet:
    """Return the one row of `result_id` as a queryset, or raise TaskResultDoesNotExist."""
    backend = _backend(alias)
    rows = TaskRecord.objects.using(backend.config.database).filter(backend_name=backend.alias)
    try:
        if not rows.filter(pk=result_id).exists():
            raise TaskResultDoesNotExist(result_id)
    except (ValidationError, ValueError) as e:
        raise TaskResultDoesNotExist(result_id) from e
    return rows.filter(pk=result_id)


__all__ = [
    "Cancellation",
    "CronRunnerTaskContext",
    "cancel",
    "cancel_ready_tasks",
    "cancel_requested",
    "retry",
    "retry_failed_tasks",
    "run_deferred_tasks_now",
    "run_now",
]
