"""Translate between stored rows and django.tasks objects."""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from django_cronrunner.compat import Task, TaskError, TaskResult, TaskResultStatus, normalize_json
from django_cronrunner.errors import ArgumentsError, NotJSONError, TaskPathError
from django_cronrunner.models import TaskRecord, as_list

# A task of any signature, and the result of one: the task classes are generic only in the
# type stubs, so at run time these are the plain classes.
if TYPE_CHECKING:
    from typing import TypeAlias

    AnyTask: TypeAlias = Task[..., Any]
    AnyResult: TypeAlias = TaskResult[..., Any]
else:
    AnyTask, AnyResult = Task, TaskResult


def resolve_task(task_path: str) -> AnyTask:
    """Import `task_path` and return it only if it is a Task."""
    try:
        candidate = import_string(task_path)
    except ImportError as e:
        raise TaskPathError(f"The task path {task_path!r} no longer imports: {e}") from e
    except Exception as e:
        # A module that raises at import time must fail this row, not stop the whole batch.
        raise TaskPathError(
            f"Importing the task path {task_path!r} raised {type(e).__name__}: {e}"
        ) from e
    if not isinstance(candidate, Task):
        raise TaskPathError(
            f"The task path {task_path!r} imports a {type(candidate).__name__}, not a Task; "
            "it was not called."
        )
    return candidate


def to_json(value: Any, what: str) -> Any:
    """Normalize `value` to plain JSON or raise NotJSONError naming `what`."""
    try:
        normalized = normalize_json(value)
        # Python's json writes NaN and Infinity, which no database's JSON type accepts, and
        # PostgreSQL refuses NUL characters: refused here, a bad value stays the task's problem
        # instead of becoming a failed write that stops the batch.
        _refuse_unstorable(normalized)
    except (TypeError, ValueError, RecursionError) as e:
        raise NotJSONError(f"The task's {what} cannot be stored as JSON: {e}") from e
    return normalized


def _refuse_unstorable(value: Any) -> None:
    """Raise ValueError for NaN, an infinity or a NUL character anywhere in `value`."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("it contains NaN or Infinity, which JSON cannot hold")
    elif isinstance(value, str):
        if "\x00" in value:
            raise ValueError("it contains a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_unstorable(key)
            _refuse_unstorable(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_unstorable(item)


def stored_arguments(record: TaskRecord) -> tuple[list[Any], dict[str, Any]]:
    """Return the row's arguments, refusing anything but a JSON list and object."""
    if not isinstance(record.args, list):
        raise ArgumentsError(
            f"The stored args of task {record.id} are not a JSON list: {record.args!r:.200}"
        )
    if not isinstance(record.kwargs, dict) or not all(isinstance(k, str) for k in record.kwargs):
        raise ArgumentsError(
            f"The stored kwargs of task {record.id} are not a JSON object: {record.kwargs!r:.200}"
        )
    return record.args, record.kwargs


def task_for(record: TaskRecord, task: AnyTask | None = None) -> AnyTask:
    """Return the record's Task with the priority, queue and run_after it was enqueued with."""
    task = task or resolve_task(record.task_path)
    stored = {
        "priority": record.priority,
        "queue_name": record.queue_name,
        "run_after": record.run_after,
        "backend": record.backend_name,
    }
    if all(getattr(task, name) == value for name, value in stored.items()):
        return task
    # Not Task.using(): it validates against today's settings, and a row stays readable (and
    # runnable) after its queue is dropped from QUEUES or its priority range changes.
    copied = copy.copy(task)
    for name, value in stored.items():
        object.__setattr__(copied, name, value)
    return copied


def to_task_result(record: TaskRecord, task: AnyTask | None = None) -> AnyResult:
    """Build the TaskResult a caller sees for `record`."""
    args, kwargs = stored_arguments(record)
    errors = [
        TaskError(
            exception_class_path=str(error.get("exception_class_path", "")),
            traceback=str(error.get("traceback", "")),
        )
        for error in as_list(record.errors)
        if isinstance(error, dict)
    ]
    result: AnyResult = TaskResult(
        task=task_for(record, task),
        id=str(record.id),
        status=TaskResultStatus(record.status),
        enqueued_at=record.enqueued_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        last_attempted_at=record.last_attempted_at,
        args=args,
        kwargs=kwargs,
        backend=record.backend_name,
        errors=errors,
        worker_ids=[str(worker_id) for worker_id in as_list(record.worker_ids)],
    )
    object.__setattr__(result, "_return_value", record.return_value)
    return result
