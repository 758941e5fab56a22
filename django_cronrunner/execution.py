"""Run one claimed task the way Django's own backends do, and describe the outcome."""

from __future__ import annotations

import logging
from datetime import timedelta

from cronrunner.clock import Clock, SystemClock
from cronrunner.errors import CronRunnerError
from cronrunner.store import ClaimedTask, Outcome
from django_cronrunner.attempt import Attempt, attempt_task, failure_from
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import task_finished
from django_cronrunner.isolation import Isolation
from django_cronrunner.models import TaskRecord, as_list
from django_cronrunner.results import (
    AnyTask,
    resolve_task,
    stored_arguments,
    to_task_result,
)
from django_cronrunner.task import retry_policy, task_timeout

logger = logging.getLogger("django_cronrunner")


class TaskExecutor:
    """Import, check and call stored tasks, sending django.tasks signals; tasks with a timeout
    run in a child process that is stopped when the timeout passes."""

    def __init__(self, backend: CronRunnerBackend, clock: Clock | None = None) -> None:
        self.backend = backend
        self.clock = clock or SystemClock()
        self.isolation = Isolation(backend)

    def run(self, task: ClaimedTask) -> Outcome:
        record: TaskRecord = task.record
        try:
            task_object = resolve_task(record.task_path)
            args, kwargs = stored_arguments(record)
        except CronRunnerError as e:
            # A row that cannot run fails alone; the batch goes on.
            return Outcome(failure=failure_from(e))
        timeout = task_timeout(task_object, self.backend.config.timeout)
        if timeout is None:
            attempt = attempt_task(self.backend, record, task_object, args, kwargs)
        else:
            attempt = self.isolation.attempt(record, timeout)
        return self._outcome(task_object, record, attempt)

    def close(self) -> None:
        """Stop the child process, if one was started."""
        self.isolation.close()

    def _outcome(self, task_object: AnyTask, record: TaskRecord, attempt: Attempt) -> Outcome:
        """Turn an attempt into an outcome, with the time of the next attempt if there is one."""
        if attempt.failure is None:
            return Outcome(return_value=attempt.return_value)
        policy = retry_policy(task_object, self.backend.config.retry)
        number = len(as_list(record.worker_ids))
        if not attempt.retryable or not policy.retries_after(number):
            return Outcome(failure=attempt.failure)
        wait = timedelta(seconds=policy.wait_after(number))
        return Outcome(failure=attempt.failure, retry_at=self.clock.now() + wait)

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
