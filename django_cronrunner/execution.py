"""Run one claimed task the way Django's own backends do, and describe the outcome."""

from __future__ import annotations

import logging
from datetime import timedelta
from traceback import format_exception

from django.tasks import TaskContext, TaskResultStatus
from django.tasks.signals import task_finished, task_started

from cronrunner.clock import Clock, SystemClock
from cronrunner.errors import CronRunnerError
from cronrunner.store import ClaimedTask, Outcome, TaskFailure
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.errors import NotJSONError
from django_cronrunner.models import TaskRecord, as_list
from django_cronrunner.results import (
    AnyTask,
    resolve_task,
    stored_arguments,
    to_json,
    to_task_result,
)
from django_cronrunner.task import never_retried, retry_policy

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

    def __init__(self, backend: CronRunnerBackend, clock: Clock | None = None) -> None:
        self.backend = backend
        self.clock = clock or SystemClock()

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
            return self._failed(task_object, record, e)

    def _failed(self, task_object: AnyTask, record: TaskRecord, error: BaseException) -> Outcome:
        """Describe a failed attempt, with the time of the next one if the task is retried."""
        failure = failure_from(error)
        policy = retry_policy(task_object, self.backend.config.retry)
        attempt = len(as_list(record.worker_ids))
        # A return value that is not JSON is a bug in the task: another attempt cannot help.
        if (
            isinstance(error, NotJSONError)
            or never_retried(task_object, error)
            or not policy.retries_after(attempt)
        ):
            return Outcome(failure=failure)
        wait = timedelta(seconds=policy.wait_after(attempt))
        return Outcome(failure=failure, retry_at=self.clock.now() + wait)

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
