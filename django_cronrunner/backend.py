"""The django.tasks backend: store tasks in the database for run_due_tasks."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from django.apps import apps
from django.core import checks
from django.core.exceptions import ValidationError
from django.db import connections
from django.utils import timezone

from cronrunner.errors import InvalidTaskSettings
from django_cronrunner.compat import (
    BaseTaskBackend,
    InvalidTask,
    TaskResultDoesNotExist,
    task_enqueued,
)
from django_cronrunner.models import TaskRecord
from django_cronrunner.options import BackendOptions
from django_cronrunner.results import to_json, to_task_result
from django_cronrunner.task import CronRunnerTask, check_timeout, retry_policy

if TYPE_CHECKING:
    from django_cronrunner.compat import Task, TaskResult
    from django_cronrunner.results import AnyResult, AnyTask


P = ParamSpec("P")
R = TypeVar("R")


class CronRunnerBackend(BaseTaskBackend):
    """Store each enqueued task as a row; `manage.py run_due_tasks` runs them later."""

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True
    task_class = CronRunnerTask

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.config = BackendOptions.parse(alias, self.options)

    def enqueue(
        self, task: Task[P, R], args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
    ) -> TaskResult[P, R]:
        """Store the task in the caller's transaction and return its READY result."""
        self.validate_task(task)
        record = self.new_record(task, args, kwargs, timezone.now())
        record.save(using=self.config.database, force_insert=True)
        result = to_task_result(record, task)
        task_enqueued.send(type(self), task_result=result)
        return cast("TaskResult[P, R]", result)

    def validate_task(self, task: AnyTask) -> None:
        """Check the task as Django does, and its retry settings."""
        super().validate_task(task)
        if not isinstance(task, CronRunnerTask):
            return
        try:
            retry_policy(task, self.config.retry)
            check_timeout(task.timeout, "timeout")
        except InvalidTaskSettings as e:
            raise InvalidTask(str(e)) from e
        for error_class in task.no_retry_on:
            if not (isinstance(error_class, type) and issubclass(error_class, BaseException)):
                raise InvalidTask(f"no_retry_on must hold exception classes, not {error_class!r}.")

    def new_record(
        self,
        task: AnyTask,
        args: tuple[Any, ...] | list[Any],
        kwargs: dict[str, Any],
        now: datetime,
        **fields: Any,
    ) -> TaskRecord:
        """Build the unsaved row for one call of `task`; `fields` override the defaults."""
        defaults: dict[str, Any] = {
            "backend_name": self.alias,
            "task_path": task.module_path,
            "queue_name": task.queue_name,
            "priority": task.priority,
            "args": to_json(list(args), "arguments"),
            "kwargs": to_json(kwargs, "keyword arguments"),
            "run_after": task.run_after,
            "due_at": task.run_after or now,
            "enqueued_at": now,
            "max_attempts": retry_policy(task, self.config.retry).max_attempts,
        }
        return TaskRecord(**(defaults | fields))

    def get_result(self, result_id: str) -> AnyResult:
        """Read a result by id from any process."""
        try:
            record = TaskRecord.objects.using(self.config.database).get(
                pk=result_id, backend_name=self.alias
            )
        except (TaskRecord.DoesNotExist, ValidationError, ValueError) as e:
            raise TaskResultDoesNotExist(result_id) from e
        return to_task_result(record)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        """Report an app that is not installed or a database that is not configured."""
        messages: list[checks.CheckMessage] = []
        if not apps.is_installed("django_cronrunner"):
            messages.append(
                checks.Error(
                    f"TASKS[{self.alias!r}] uses CronRunnerBackend but django_cronrunner is not "
                    "in INSTALLED_APPS.",
                    hint="Add 'django_cronrunner' to INSTALLED_APPS and run migrate.",
                    id="django_cronrunner.E001",
                )
            )
        if self.config.database not in connections.settings:
            messages.append(
                checks.Error(
                    f"TASKS[{self.alias!r}]['OPTIONS']['database'] names "
                    f"{self.config.database!r}, which is not in DATABASES.",
                    id="django_cronrunner.E002",
                )
            )
        # Imported here because scheduling imports this module.
        from django_cronrunner.scheduling import parse_schedules

        messages.extend(
            checks.Error(
                str(error),
                obj=f"TASKS[{self.alias!r}] schedule {name!r}",
                id="django_cronrunner.E010",
            )
            for name, error in parse_schedules(self)[1].items()
        )
        return messages
