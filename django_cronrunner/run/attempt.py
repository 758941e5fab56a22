"""One attempt at a task, in this process: call it, and describe how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from traceback import format_exception
from typing import TYPE_CHECKING, Any

from cronrunner.shutdown import StopNow
from cronrunner.store import TaskFailure
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import TaskResultStatus, task_started
from django_cronrunner.control import CronRunnerTaskContext
from django_cronrunner.errors import NotJSONError, TaskCancelled
from django_cronrunner.models import TaskRecord
from django_cronrunner.storage.results import AnyResult, to_json, to_task_result
from django_cronrunner.task import backoff_callable, never_retried

if TYPE_CHECKING:
    from django_cronrunner.storage.results import AnyTask


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
    #: The exception itself, when the attempt ran in this process (never sent to a parent).
    error: BaseException | None = field(default=None, compare=False, repr=False)
    #: Seconds before the next attempt, as the task's backoff callable decided.
    retry_after: float | None = None
    #: The TaskResult task_started was sent, when the attempt ran in this process: the same
    #: object goes with task_finished.
    result: AnyResult | None = field(default=None, compare=False, repr=False)


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
            context = CronRunnerTaskContext(task_result=result)
            value = task_object.call(context, *args, **kwargs)
        else:
            value = task_object.call(*args, **kwargs)
        return Attempt(return_value=to_json(value, "return value"), result=result)
    except StopNow:
        # A second SIGTERM or SIGINT delivered to this process: the operator stops the run.
        raise
    except BaseException as e:
        # KeyboardInterrupt or SystemExit raised by the task itself is the task's failure, not
        # a reason to stop the batch. A return value that is not JSON is a bug in the task, and a
        # cancelled task was asked not to go on: another attempt cannot help.
        retryable = not isinstance(e, NotJSONError | TaskCancelled) and not never_retried(
            task_object, e
        )
        backoff = backoff_callable(task_object)
        if not retryable or backoff is None:
            return Attempt(failure=failure_from(e), retryable=retryable, error=e, result=result)
        wait = ask_backoff(backoff, e, result)
        return Attempt(
            failure=failure_from(e),
            retryable=wait is not None,
            retry_after=wait,
            error=e,
            result=result,
        )


def ask_backoff(backoff: Any, error: BaseException, result: AnyResult) -> float | None:
    """Return the seconds the task's backoff callable asks for before the next attempt, or
    None for no retry; a callable that raises or answers nonsense means no retry."""
    try:
        wait = backoff(error, result)
    except Exception:
        return None
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait < 1e7:
        return None
    return float(wait)
