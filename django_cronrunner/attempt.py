"""One attempt at a task, in this process: call it, and describe how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from traceback import format_exception
from typing import TYPE_CHECKING, Any

from cronrunner.store import TaskFailure
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import TaskContext, TaskResultStatus, task_started
from django_cronrunner.errors import NotJSONError
from django_cronrunner.models import TaskRecord
from django_cronrunner.results import to_json, to_task_result
from django_cronrunner.task import never_retried

if TYPE_CHECKING:
    from django_cronrunner.results import AnyTask


def failure_from(error: BaseException) -> TaskFailure:
    """Describe an exception as Django's TaskError does."""
    cls = type(error)
    return TaskFailure(
        exception_class_path=f"{cls.__module__}.{cls.__qualname__}",
        traceback="".join(format_exception(error)),
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one call of a task did: its JSON return value, or its failure and whether another
    attempt could help."""

    return_value: Any = None
    failure: TaskFailure | None = None
    retryable: bool = False


def attempt_task(
    backend: CronRunnerBackend,
    record: TaskRecord,
    task_object: AnyTask,
    args: list[Any],
    kwargs: dict[str, Any],
) -> Attempt:
    """Call the task once, here, sending task_started; never raise for the task's own errors."""
    result = to_task_result(record, task_object)
    object.__setattr__(result, "status", TaskResultStatus.RUNNING)
    try:
        # A task_started receiver that raises fails this attempt, as the task raising would:
        # left to propagate, it would stop every batch that meets the task.
        task_started.send(type(backend), task_result=result)
        if task_object.takes_context:
            value = task_object.call(TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task_object.call(*args, **kwargs)
        return Attempt(return_value=to_json(value, "return value"))
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        # SystemExit from a task is the task's failure, not a reason to stop the batch. A return
        # value that is not JSON is a bug in the task: another attempt cannot help.
        retryable = not isinstance(e, NotJSONError) and not never_retried(task_object, e)
        return Attempt(failure=failure_from(e), retryable=retryable)
