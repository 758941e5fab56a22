"""The backend's task class: a Task that also declares how it is retried and timed out."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cronrunner.errors import InvalidTaskSettings
from cronrunner.retry import Backoff, RetryPolicy
from django_cronrunner.compat import InvalidTask, Task
from django_cronrunner.compat import task as framework_task

if TYPE_CHECKING:  # django.tasks classes are generic only in the type stubs
    _TaskBase = Task[..., Any]
else:
    _TaskBase = Task


@dataclass(frozen=True, slots=True, kw_only=True)
class CronRunnerTask(_TaskBase):
    """A Task with retries: `@task(max_attempts=5, retry_backoff="linear", retry_delay=30)`.

    Unset values come from the backend's OPTIONS["retry"]; exceptions in `no_retry_on` (and
    their subclasses) fail the task at once.
    """

    max_attempts: int | None = None
    retry_backoff: Backoff | str | None = None
    retry_delay: float | None = None
    no_retry_on: tuple[type[BaseException], ...] = ()
    timeout: float | None = None
    #: Passed by the django-tasks backport's decorator before 0.11. Rows are written in the
    #: caller's transaction, so they commit or roll back with it whatever this says.
    enqueue_on_commit: bool | None = None


def task(
    function: Callable[..., Any] | None = None,
    *,
    max_attempts: int | None = None,
    retry_backoff: Backoff | str | None = None,
    retry_delay: float | None = None,
    no_retry_on: tuple[type[BaseException], ...] = (),
    timeout: float | None = None,
    **options: Any,
) -> Any:
    """Declare a task with retry and timeout settings, on every supported Django.

    Django 6.1's own `@task` passes these keywords through; Django 6.0's and the backport's
    older releases do not, so this builds the task with them and then adds the settings.
    """
    settings: dict[str, Any] = {
        "max_attempts": max_attempts,
        "retry_backoff": retry_backoff,
        "retry_delay": retry_delay,
        "no_retry_on": no_retry_on,
        "timeout": timeout,
    }

    def declare(func: Callable[..., Any]) -> CronRunnerTask:
        created = framework_task(**options)(func)
        if not isinstance(created, CronRunnerTask):
            raise InvalidTask(
                f"TASKS[{created.backend!r}] does not use CronRunnerBackend, so it cannot take "
                "retry or timeout settings."
            )
        # replace() validates again, with the settings (the backend checks them).
        declared: CronRunnerTask = dataclasses.replace(created, **settings)
        return declared

    return declare if function is None else declare(function)


def retry_policy(task: object, default: RetryPolicy) -> RetryPolicy:
    """Return the task's retry policy; what it leaves unset comes from the backend's."""
    if not isinstance(task, CronRunnerTask):
        return default
    return RetryPolicy(
        max_attempts=default.max_attempts if task.max_attempts is None else task.max_attempts,
        backoff=default.backoff if task.retry_backoff is None else task.retry_backoff,
        delay=default.delay if task.retry_delay is None else task.retry_delay,
        max_delay=default.max_delay,
        jitter=default.jitter,
    )


def never_retried(task: object, error: BaseException) -> bool:
    """Say whether the task declares `error` as one that must not be retried."""
    return isinstance(task, CronRunnerTask) and isinstance(error, task.no_retry_on)


def task_timeout(task: object, default: float | None) -> float | None:
    """Return the seconds the task may run before it is stopped, or None for no limit."""
    if isinstance(task, CronRunnerTask) and task.timeout is not None:
        return task.timeout
    return default


def check_timeout(value: object, what: str) -> None:
    """Refuse a timeout that is not None or a positive, finite number of seconds."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e7:
        raise InvalidTaskSettings(f"{what} must be a positive number of seconds, not {value!r}.")
