"""Translate between stored rows and django.tasks objects."""

from __future__ import annotations

import copy
import dataclasses
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


class MissingTask(AnyTask):
    """What `TaskResult.task` is for a stored row whose task path no longer imports: it names
    the stored path (`module_path`, `name`) and refuses to run or to be enqueued."""

    __slots__ = ("error",)
    error: str

    def call(self, *args: Any, **kwargs: Any) -> Any:
        raise TaskPathError(self.error)

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        raise TaskPathError(self.error)

    def enqueue(self, *args: Any, **kwargs: Any) -> Any:
        raise TaskPathError(self.error)

    async def aenqueue(self, *args: Any, **kwargs: Any) -> Any:
        raise TaskPathError(self.error)

    def using(self, *args: Any, **kwargs: Any) -> Any:
        raise TaskPathError(self.error)


def missing_task(record: TaskRecord, error: TaskPathError) -> AnyTask:
    """Stand in for the Task of `record`, whose path no longer imports."""
    module, _, name = record.task_path.rpartition(".")

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        raise TaskPathError(str(error))

    # module_path and name are read from the function, as for any Task.
    stand_in.__module__ = module
    stand_in.__name__ = stand_in.__qualname__ = name
    # Built without Task.__init__: it would validate against today's settings, and the row
    # must stay readable whatever has changed since it was stored.
    placeholder = object.__new__(MissingTask)
    values = {
        "func": stand_in,
        "priority": record.priority,
        "backend": record.backend_name,
        "queue_name": record.queue_name,
        "run_after": record.run_after,
        "takes_context": False,
        "error": str(error),
    }
    for field_name in (*(f.name for f in dataclasses.fields(Task)), "error"):
        object.__setattr__(placeholder, field_name, values.get(field_name))
    return placeholder


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
    """Build the TaskResult a caller sees for `record`; its task is a MissingTask when the
    stored task path no longer imports."""
    args, kwargs = stored_arguments(record)
    if task is None:
        try:
            task = resolve_task(record.task_path)
        except TaskPathError as e:
            task = missing_task(record, e)
    result: AnyResult = TaskResult(
        task=task_for(record, task),
        id=str(record.id),
        enqueued_at=record.enqueued_at,
        args=args,
        kwargs=kwargs,
        backend=record.backend_name,
        **_state(record),
    )
    object.__setattr__(result, "_return_value", record.return_value)
    return result


def refresh_task_result(result: AnyResult, record: TaskRecord) -> None:
    """Bring `result`, built from `record` earlier, up to the row's current state, as Django's
    own backends update the one TaskResult they send task_started and task_finished."""
    for name, value in _state(record).items():
        object.__setattr__(result, name, value)
    object.__setattr__(result, "_return_value", record.return_value)


def _state(record: TaskRecord) -> dict[str, Any]:
    """Return the TaskResult fields a row changes as it runs."""
    return {
        "status": TaskResultStatus(record.status),
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "last_attempted_at": record.last_attempted_at,
        "errors": [
            TaskError(
                exception_class_path=str(error.get("exception_class_path", "")),
                traceback=str(error.get("traceback", "")),
            )
            for error in as_list(record.errors)
            if isinstance(error, dict)
        ],
        "worker_ids": [str(worker_id) for worker_id in as_list(record.worker_ids)],
    }
