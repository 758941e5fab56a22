"""Run one claimed task the way Django's own backends do, and describe the outcome."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from django.db import Error as DatabaseError
from django.db import connections

from cronrunner.clock import Clock, SystemClock
from cronrunner.errors import CronRunnerError
from cronrunner.store import ClaimedTask, Outcome
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import task_finished
from django_cronrunner.models import TaskRecord, as_list
from django_cronrunner.run.attempt import Attempt, ask_backoff, attempt_task, failure_from
from django_cronrunner.run.isolation import Isolation, failure_as_exception
from django_cronrunner.storage.results import (
    AnyResult,
    AnyTask,
    refresh_task_result,
    resolve_task,
    stored_arguments,
    to_task_result,
)
from django_cronrunner.task import backoff_callable, retry_policy, task_timeout

logger = logging.getLogger("django_cronrunner")


class TaskExecutor:
    """Import, check and call stored tasks, sending django.tasks signals; tasks with a timeout
    run in a child process that is stopped when the timeout passes."""

    def __init__(self, backend: CronRunnerBackend, clock: Clock | None = None) -> None:
        self.backend = backend
        self.clock = clock or SystemClock()
        self.isolation = Isolation(backend)
        # The exception of the attempt whose outcome is being stored, by task id: task_finished
        # is sent while it is being handled, as Django's own backends do.
        self._errors: dict[str, BaseException] = {}
        # The TaskResult that task_started was sent with, by task id, for task_finished.
        self._results: dict[str, AnyResult] = {}
        # Whether this attempt logged that the database could not say if a stop was asked.
        self._unanswered_logged = False

    def run(self, task: ClaimedTask) -> Outcome:
        # The previous task's outcome was settled before this one was started.
        self._errors.clear()
        self._results.clear()
        self._unanswered_logged = False
        record: TaskRecord = task.record
        try:
            task_object = resolve_task(record.task_path)
            args, kwargs = stored_arguments(record)
        except CronRunnerError as e:
            # A row that cannot run fails alone; the batch goes on.
            self._errors[task.id] = e
            return Outcome(failure=failure_from(e))
        timeout = task_timeout(task_object, self.backend.config.timeout)
        if timeout is None:
            attempt = attempt_task(self.backend, record, task_object, args, kwargs)
        else:
            attempt = self.isolation.attempt(
                record, timeout, stop_requested=lambda: self._stop_requested(record)
            )
        if attempt.failure is not None:
            self._errors[task.id] = attempt.error or failure_as_exception(attempt.failure)
        if attempt.result is not None:
            self._results[task.id] = attempt.result
        return self._outcome(task_object, record, attempt)

    def _stop_requested(self, record: TaskRecord) -> bool:
        """Say whether a stop was asked of the task of `record`; a database that cannot
        answer means no: its blip must not fail a task that runs well, nor the run."""
        alias = self.backend.config.database
        rows = TaskRecord.objects.using(alias).filter(pk=record.pk)
        connection = connections[alias]
        for _ in range(2):
            try:
                return rows.filter(cancel_requested_at__isnull=False).exists()
            except DatabaseError as e:
                error = e
                # Inside a transaction a new connection would lose its earlier statements.
                if connection.in_atomic_block:
                    break
                # A task may have left this thread's connection dead: ask once more on a
                # new one.
                with contextlib.suppress(DatabaseError):
                    connection.close()
        if not self._unanswered_logged:
            self._unanswered_logged = True
            logger.warning(
                "The database could not say whether task %s was asked to stop (%s); it goes on "
                "as if not.",
                record.pk,
                " ".join(str(error).split()) or type(error).__name__,
            )
        return False

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
        seconds = attempt.retry_after
        backoff = backoff_callable(task_object)
        if seconds is None and backoff is not None:
            # A failure the parent saw (a timeout, a dead child): the callable is asked here.
            seconds = ask_backoff(
                backoff,
                failure_as_exception(attempt.failure),
                to_task_result(record, task_object),
            )
            if seconds is None:
                return Outcome(failure=attempt.failure)
        if self._stop_requested(record):
            return Outcome(failure=attempt.failure)  # cancelled while it ran: no retry
        if seconds is None:
            seconds = policy.wait_after(number)
        return Outcome(
            failure=attempt.failure, retry_at=self.clock.now() + timedelta(seconds=seconds)
        )

    def finished(self, task: ClaimedTask, outcome: Outcome) -> None:
        record: TaskRecord = task.record
        result = self._results.pop(task.id, None)
        if result is not None:
            refresh_task_result(result, record)
        else:
            try:
                result = to_task_result(record)
            except CronRunnerError:
                # The row was corrupt or its task no longer imports: no TaskResult to send.
                return
        error = self._errors.pop(task.id, None)
        if error is None:
            self._send_finished(task, result)
            return
        # Raised again so that receivers (Django's own logger among them) find the task's
        # exception in sys.exc_info(), as with Django's reference backends.
        try:
            raise error
        except BaseException:
            self._send_finished(task, result)

    def _send_finished(self, task: ClaimedTask, result: AnyResult) -> None:
        # The outcome is already stored: a receiver's bug is logged, and the batch goes on.
        for receiver, response in task_finished.send_robust(type(self.backend), task_result=result):
            if isinstance(response, Exception):
                logger.error(
                    "A task_finished receiver %r failed for task %s.",
                    receiver,
                    task.id,
                    exc_info=(type(response), response, response.__traceback__),
                )
