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
from django.utils.functional import cached_property

from cronrunner.errors import InvalidTaskSettings
from django_cronrunner.compat import (
    BaseTaskBackend,
    InvalidTask,
    TaskResultDoesNotExist,
    task_backends,
    task_enqueued,
)
from django_cronrunner.errors import BackendMismatch
from django_cronrunner.ids import new_task_id
from django_cronrunner.models import TaskRecord
from django_cronrunner.options import BackendOptions
from django_cronrunner.storage.database_clock import database_now
from django_cronrunner.storage.limits import concurrency_of
from django_cronrunner.storage.results import to_json, to_task_result
from django_cronrunner.storage.rowsql import RowStatements
from django_cronrunner.storage.uniqueness import insert_unique, unique_key_of
from django_cronrunner.task import (
    CronRunnerTask,
    check_task_options,
    check_timeout,
    retry_policy,
)

if TYPE_CHECKING:
    from django_cronrunner.compat import Task, TaskResult
    from django_cronrunner.storage.results import AnyResult, AnyTask


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
        transaction; return their READY results in order.

        A call of a unique task whose equal call is pending stores nothing: its result is the
        pending one's (and task_enqueued is not sent for it).
        """
        self.validate_task(task)
        # Due now by the database's clock, which every host's runs compare against.
        now = database_now(self.config.database)
        records: list[TaskRecord] = []
        keyed = isinstance(task, CronRunnerTask) and (
            task.unique or task.unique_key is not None or task.concurrency_limit is not None
        )
        for args, kwargs in calls:
            if not records:
                records.append(self.new_record(task, args, kwargs, now))
                continue
            # The other calls differ only in id and arguments: copying the first row is far
            # cheaper than building a model instance, and the shared values are prepared once.
            record = _sibling(records[0])
            record.args, record.kwargs = stored_json(args, kwargs)
            if keyed:
                _set_keys(record, task)
            records.append(record)
        if not records:
            return []
        if any(record.unique_key is not None for record in records):
            with transaction.atomic(using=self.config.database):
                placed = insert_unique(self.config.database, records, self.rows.insert)
        elif len(records) == 1:
            self.rows.insert(records)
            placed = [(records[0], True)]
        else:
            with transaction.atomic(using=self.config.database):
                self.rows.insert(records)
            placed = [(record, True) for record in records]
        results = []
        for record, new in placed:
            result = cast("TaskResult[P, R]", to_task_result(record, task if new else None))
            if new:
                task_enqueued.send(type(self), task_result=result)
            results.append(result)
        return results

    def validate_task(self, task: AnyTask) -> None:
        """Check the task as Django does, and its retry settings."""
        super().validate_task(task)
        if not isinstance(task, CronRunnerTask):
            return
        try:
            retry_policy(task, self.config.retry)
            check_timeout(task.timeout, "timeout")
            check_task_options(task)
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
        record = TaskRecord(**(defaults | fields))
        _set_keys(record, task)
        return record

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


def _set_keys(record: TaskRecord, task: AnyTask) -> None:
    """Fill the row's unique and concurrency keys from its stored arguments; key callables
    see the arguments as stored (JSON), so equal calls always get equal keys."""
    record.unique_key = unique_key_of(task, record.args, record.kwargs)
    record.concurrency_key, record.concurrency_limit = concurrency_of(
        task, record.args, record.kwargs
    )


def stored_json(args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    """Return a call's arguments as the row stores them, or raise NotJSONError."""
    return to_json(list(args), "arguments"), to_json(dict(kwargs), "keyword arguments")


def get_backend(alias: str) -> CronRunnerBackend:
    """Return the CronRunnerBackend configured as `alias`."""
    backend = task_backends[alias]
    if not isinstance(backend, CronRunnerBackend):
        raise BackendMismatch(
            f"TASKS[{alias!r}] uses {type(backend).__name__}, not CronRunnerBackend; "
            "run_due_tasks only runs tasks stored by CronRunnerBackend."
        )
    return backend
