"""Run one claimed task the way Django's own backends do, and describe the outcome."""

from __future__ import annotations

import logging
from traceback import format_exception

from django.tasks import TaskContext, TaskResultStatus
from django.tasks.signals import task_finished, task_started

from cronrunner.errors import CronRunnerError
from cronrunner.store import ClaimedTask, Outcome, TaskFailure
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.models import TaskRecord
from django_cronrunner.results import resolve_task, stored_arguments, to_json, to_task_result

logger = logging.getLogger("django_cronrunner")


def failure_from(error: BaseException) -> TaskFailure:
    """Describe an exception as Django's TaskError does."""
    cls = type(error)
    return TaskFailure(
        exception_class_path=f"{cls.__module__}.{cls.__qualname__}",
        traceback="".join(format_exception(error)),
    )


class TaskExecutor:
    """Import, check and call stored tasks, sending django.tasks signals."""

    def __init__(self, backend: CronRunnerBackend) -> None:
        self.backend = backend

    def run(self, task: ClaimedTask) -> Outcome:
        record: TaskRecord = task.record
        try:
            task_object = resolve_task(record.task_path)
            args, kwargs = stored_arguments(record)
        except CronRunnerError as e:
            # A row that cannot run fails alone; the batch goes on.
            return Outcome(failure=failure_from(e))
        result = to_task_result(record, task_object)
        object.__setattr__(result, "status", TaskResultStatus.RUNNING)
        try:
            # A task_started receiver that raises fails this attempt, as the task raising would:
            # left to propagate, it would stop every batch that meets the task.
            task_started.send(type(self.backend), task_result=result)
            if task_object.takes_context:
                value = task_object.call(TaskContext(task_result=result), *args, **kwargs)
            else:
                value = task_object.call(*args, **kwargs)
            return Outcome(return_value=to_json(value, "return value"))
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            # SystemExit from a task is the task's failure, not a reason to stop the batch.
            return Outcome(failure=failure_from(e))

    def finished(self, task: ClaimedTask, outcome: Outcome) -> None:
        record: TaskRecord = task.record
        try:
            result = to_task_result(record)
        except CronRunnerError:
            # The row was corrupt or its task no longer imports: there is no TaskResult to send.
            return
        # The outcome is already stored: a receiver's bug is logged, and the batch goes on.
        for receiver, response in task_finished.send_robust(type(self.backend), task_result=result):
            if isinstance(response, Exception):
                logger.error(
                    "A task_finished receiver %r failed for task %s.",
                    receiver,
                    task.id,
                    exc_info=(type(response), response, response.__traceback__),
                )
