"""The backend's task class: a Task that also declares how it is retried, timed out,
deduplicated and limited."""

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
    #: Django's proposed spelling (new-features#142): a callable (exception, task_result) ->
    #: seconds before the next attempt, or None for no retry; a backoff name is read as
    #: `retry_backoff`.
    backoff: Callable[[BaseException, Any], float | None] | str | None = None
    #: An equal call enqueued while this one is pending stores nothing and returns this one.
    unique: bool = False
    #: "started": pending until it starts; "finished": until it has finished (or failed).
    unique_until: str = "started"
    #: The key equal calls share: a string, a callable of the call's arguments returning one,
    #: or None for the task path and arguments. Setting it makes the task unique.
    unique_key: str | Callable[..., str] | None = None
    #: At most this many tasks of one concurrency key run at once, across runs and hosts.
    concurrency_limit: int | None = None
    #: The key: a string, a callable of the call's arguments returning one, or None for the
    #: task path.
    concurrency_key: str | Callable[..., str] | None = None
    #: Passed by the django-tasks backport's decorator before 0.11. Rows are written in the
    #: caller's transaction, so they commit or roll back with it whatever this says.
    enqueue_on_commit: bool | None = None

    def using(
        self,
        *,
        priority: int | None = None,
        queue_name: str | None = None,
        run_after: Any = None,
        backend: str | None = None,
        **options: Any,
    ) -> CronRunnerTask:
        """Return a copy with other defaults; also takes this class's own options, such as
        `unique_key` or `concurrency_key`, for one enqueue."""
        unknown = sorted(set(options) - set(OWN_OPTIONS))
        if unknown:
            raise TypeError(f"using() got unknown options {unknown}; known: {OWN_OPTIONS}.")
        # Django's using() builds the copy (and validates it); it is a dataclass, so the
        # options are replaced on top.
        changed = _TaskBase.using(
            self, priority=priority, queue_name=queue_name, run_after=run_after, backend=backend
        )
        copied: CronRunnerTask = dataclasses.replace(changed, **options) if options else changed  # type: ignore[assignment]
        return copied


#: The keyword arguments this class adds to Django's Task.
OWN_OPTIONS = tuple(
    field.name
    for field in dataclasses.fields(CronRunnerTask)
    if field.name not in {f.name for f in dataclasses.fields(Task)}
)


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
    """Declare a task with retry, timeout, uniqueness and concurrency settings, on every
    supported Django.

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
    settings.update({name: options.pop(name) for name in OWN_OPTIONS if name in options})

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
    backoff = task.retry_backoff
    if backoff is None and isinstance(task.backoff, str):
        backoff = task.backoff
    return RetryPolicy(
        max_attempts=default.max_attempts if task.max_attempts is None else task.max_attempts,
        backoff=default.backoff if backoff is None else backoff,
        delay=default.delay if task.retry_delay is None else task.retry_delay,
        max_delay=default.max_delay,
        jitter=default.jitter,
    )


def backoff_callable(task: object) -> Callable[[BaseException, Any], float | None] | None:
    """Return the task's backoff callable (Django's proposed spelling), if it declares one."""
    if isinstance(task, CronRunnerTask) and callable(task.backoff):
        return task.backoff
    return None


def check_task_options(task: CronRunnerTask) -> None:
    """Refuse uniqueness, concurrency and backoff settings that cannot work."""
    if not isinstance(task.unique, bool):
        raise InvalidTaskSettings(f"unique must be True or False, not {task.unique!r}.")
    if task.unique_until not in UNIQUE_UNTIL:
        raise InvalidTaskSettings(
            f"unique_until must be one of {sorted(UNIQUE_UNTIL)}, not {task.unique_until!r}."
        )
    for name in ("unique_key", "concurrency_key"):
        value = getattr(task, name)
        if value is not None and not (isinstance(value, str) or callable(value)):
            raise InvalidTaskSettings(
                f"{name} must be a string or a callable of the task's arguments, not {value!r}."
            )
    limit = task.concurrency_limit
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000
    ):
        raise InvalidTaskSettings(
            f"concurrency_limit must be a whole number from 1 to 1000, not {limit!r}."
        )
    if task.concurrency_key is not None and limit is None:
        raise InvalidTaskSettings("concurrency_key needs a concurrency_limit.")
    if task.backoff is not None and not (isinstance(task.backoff, str) or callable(task.backoff)):
        raise InvalidTaskSettings(
            "backoff must be a callable (exception, task_result) -> seconds or None, or a "
            f"backoff name, not {task.backoff!r}."
        )
    if isinstance(task.backoff, str) and task.retry_backoff is not None:
        raise InvalidTaskSettings("Give backoff or retry_backoff, not both.")


#: When a unique task stops being pending: once it starts, or once it has finished.
UNIQUE_UNTIL = frozenset({"started", "finished"})


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
