"""The django.tasks backend: store tasks in the database for run_due_tasks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from django.apps import apps
from django.core import checks
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models.base import ModelState
from django.utils import timezone
from django.utils.functional import cached_property

from cronrunner.errors import InvalidTaskSettings
from django_cronrunner.compat import (
    BaseTaskBackend,
    InvalidTask,
    TaskResultDoesNotExist,
    task_enqueued,
)
from django_cronrunner.ids import new_task_id
from django_cronrunner.models import TaskRecord
from django_cronrunner.options import BackendOptions
from django_cronrunner.results import to_json, to_task_result
from django_cronrunner.rowsql import RowStatements
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

    @cached_property
    def rows(self) -> RowStatements:
        return RowStatements(self.config.database, self.alias)

    def enqueue(
        self, task: Task[P, R], args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
    ) -> TaskResult[P, R]:
        """Store the task in the caller's transaction and return its READY result."""
        (result,) = self.enqueue_many(task, [(args, kwargs)])
        return result

    def enqueue_many(
        self, task: Task[P, R], calls: Iterable[tuple[Sequence[Any], Mapping[str, Any]]]
    ) -> list[TaskResult[P, R]]:
        """Store one row per (args, kwargs) call of `task`, all or none, in the caller's
        transaction; return their READY results in order."""
        self.validate_task(task)
        now = timezone.now()
        records: list[TaskRecord] = []
        for args, kwargs in calls:
            if not records:
                records.append(self.new_record(task, args, kwargs, now))
                continue
            # The other calls differ only in id and arguments: copying the first row is far
            # cheaper than building a model instance, and the shared values are prepared once.
            record = _sibling(records[0])
            record.args, record.kwargs = stored_json(args, kwargs)
            records.append(record)
        if len(records) == 1:
            self.rows.insert(records)
        elif records:
            with transaction.atomic(using=self.config.database):
                self.rows.insert(records)
        results = [cast("TaskResult[P, R]", to_task_result(record, task)) for record in records]
        for result in results:
            task_enqueued.send(type(self), task_result=result)
        return results

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
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        now: datetime,
        **fields: Any,
    ) -> TaskRecord:
        """Build the unsaved row for one call of `task`; `fields` override the defaults."""
        stored_args, stored_kwargs = stored_json(args, kwargs)
        defaults: dict[str, Any] = {
            "backend_name": self.alias,
            "task_path": task.module_path,
            "queue_name": task.queue_name,
            "priority": task.priority,
            "args": stored_args,
            "kwargs": stored_kwargs,
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


def _sibling(record: TaskRecord) -> TaskRecord:
    """Return an unsaved copy of `record` with a new id; copy.copy() of a model is five times
    slower (it pickles the instance's state)."""
    sibling = TaskRecord.__new__(TaskRecord)
    sibling.__dict__.update(record.__dict__)
    sibling._state = ModelState()
    sibling._state.db = record._state.db
    sibling.id = new_task_id()
    return sibling


def stored_json(args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    """Return a call's arguments as the row stores them, or raise NotJSONError."""
    return to_json(list(args), "arguments"), to_json(dict(kwargs), "keyword arguments")
