"""The task store on the Django ORM: claim, start, finish, release and recover rows."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from cronrunner.recovery import recover_orphan
from cronrunner.store import BatchSummary, ClaimedTask, Outcome, Status, TaskFailure
from django_cronrunner.models import (
    BatchRun,
    TaskDuration,
    TaskRecord,
    TaskRecordQuerySet,
    as_list,
)
from django_cronrunner.rowsql import RowStatements

T = TypeVar("T")

#: How long to keep retrying a write that SQLite reports as locked by another writer.
SQLITE_BUSY_PATIENCE = 30.0

#: How long to keep reconnecting when a PostgreSQL or MariaDB connection is lost mid-run.
RECONNECT_PATIENCE = 10.0


class DatabaseTaskStore:
    """Implement cronrunner's TaskStore for one run on one database alias."""

    def __init__(
        self,
        *,
        using: str,
        backend_name: str,
        worker_id: str,
        lock_key: str,
        lease_seconds: float,
        queues: frozenset[str] | None,
    ) -> None:
        self.using = using
        self.backend_name = backend_name
        self.worker_id = worker_id
        self.lock_key = lock_key
        self.lease = timedelta(seconds=lease_seconds)
        self.queues = queues
        self.rows = RowStatements(using, backend_name)

    @property
    def tasks(self) -> TaskRecordQuerySet:
        return TaskRecord.objects.using(self.using).filter(backend_name=self.backend_name)

    def recover(self, now: datetime) -> int:
        recovered = 0
        orphans = self.tasks.orphaned(now, self.lock_key).exclude(claimed_by=self.worker_id)
        for record in self._write(lambda: list(orphans)):
            recovered += self._settle_orphan(record, now)
        return recovered

    def _settle_orphan(self, record: TaskRecord, now: datetime) -> int:
        decision = recover_orphan(
            as_list(record.worker_ids), record.claimed_by or "", record.max_attempts
        )
        changes: dict[str, object] = {
            "status": Status.READY if decision.requeue else Status.FAILED,
            "claimed_by": None,
            "claim_lock": None,
            "lease_expires_at": None,
        }
        if decision.failure is not None:
            lost = attempt_error(decision.failure, record.claimed_by, record.last_attempted_at, now)
            changes["errors"] = [*as_list(record.errors), lost]
        if decision.requeue:
            changes["due_at"] = decision.due_again(record.due_at, now)
        else:
            changes["finished_at"] = now
        # Filtering on the old claim makes two runs recovering at once settle a task once.
        unsettled = self.tasks.running().filter(pk=record.pk, claimed_by=record.claimed_by)
        return self._write(lambda: unsettled.update(**changes))

    def claim(
        self, now: datetime, limit: int, skip_paths: frozenset[str] = frozenset()
    ) -> Sequence[ClaimedTask]:
        if self.queues is not None and not self.queues:
            return []  # no queue at all; the raw PostgreSQL claim cannot compile an empty IN
        due = self.tasks.in_queues(self.queues).due(now)
        if skip_paths:
            due = due.exclude(task_path__in=sorted(skip_paths))
        claim_changes = {
            "status": Status.RUNNING,
            "claimed_by": self.worker_id,
            "claim_lock": self.lock_key,
            "lease_expires_at": now + self.lease,
        }
        if connections[self.using].vendor == "mysql":
            records = self._write(lambda: self._claim_skip_locked(due, limit, claim_changes))
        else:
            records = self._write(lambda: self._claim_returning(due, limit, claim_changes))
        records.sort(key=lambda record: (-record.priority, record.due_at, record.enqueued_at))
        return [
            ClaimedTask(
                id=str(record.pk),
                task_path=record.task_path,
                priority=record.priority,
                queue_name=record.queue_name,
                record=record,
            )
            for record in records
        ]

    def _claim_returning(
        self, due: TaskRecordQuerySet, limit: int, changes: dict[str, object]
    ) -> list[TaskRecord]:
        # One autocommitted UPDATE ... RETURNING picks, marks and reads the batch: no
        # transaction round trips. SQLite takes its write lock as the statement starts, so a
        # busy database is waited on (busy timeout) rather than failing a read-to-write
        # upgrade; PostgreSQL holds row locks only while it runs, skipping rows another run
        # is claiming (ARRAY() makes the locking sub-select run exactly once).
        connection = connections[self.using]
        quote = connection.ops.quote_name
        picked_sql, picked_params = (
            due.values("pk")[:limit].query.get_compiler(using=self.using).as_sql()
        )
        if connection.vendor == "postgresql":
            picked = f"= ANY(ARRAY({picked_sql} FOR UPDATE SKIP LOCKED))"
        else:
            picked = f"IN ({picked_sql})"
        assignments, params = self.rows.assignments(changes)
        pk_column = quote(str(TaskRecord._meta.pk.column))
        sql = (
            f"UPDATE {quote(TaskRecord._meta.db_table)} SET {assignments} "
            f"WHERE {pk_column} {picked} RETURNING *"
        )
        return list(TaskRecord.objects.raw(sql, [*params, *picked_params], using=self.using))

    def _claim_skip_locked(
        self, due: TaskRecordQuerySet, limit: int, changes: dict[str, object]
    ) -> list[TaskRecord]:
        with transaction.atomic(using=self.using):
            records = list(due.select_for_update(skip_locked=True)[:limit])
            if records:
                self.tasks.filter(pk__in=[record.pk for record in records]).update(**changes)
        for record in records:
            for field, value in changes.items():
                setattr(record, field, value)
        return records

    def start(self, task: ClaimedTask, now: datetime) -> bool:
        changes = self._start_changes(task.record, now)
        updated = self._write(lambda: self._update_held(task, changes))
        return self._applied(task, changes, updated)

    def finish(self, task: ClaimedTask, outcome: Outcome, now: datetime) -> bool:
        changes = self._finish_changes(task.record, outcome, now)
        updated = self._write(lambda: self._update_held(task, changes))
        return self._applied(task, changes, updated)

    def finish_then_start(
        self, task: ClaimedTask, outcome: Outcome, next_task: ClaimedTask, now: datetime
    ) -> tuple[bool, bool]:
        finished = self._finish_changes(task.record, outcome, now)
        starting = self._start_changes(next_task.record, now)

        # One commit instead of two: a commit (a WAL flush) is most of what a task costs.
        recorded, started = self._write(
            lambda: self.rows.update_two_held(
                (task.record.pk, finished), (next_task.record.pk, starting), self.worker_id
            )
        )
        return (
            self._applied(task, finished, recorded),
            self._applied(next_task, starting, started),
        )

    def _start_changes(self, record: TaskRecord, now: datetime) -> dict[str, object]:
        return {
            "worker_ids": [*as_list(record.worker_ids), self.worker_id],
            "started_at": record.started_at or now,
            "last_attempted_at": now,
        }

    def _finish_changes(
        self, record: TaskRecord, outcome: Outcome, now: datetime
    ) -> dict[str, object]:
        changes: dict[str, object] = {
            "claimed_by": None,
            "claim_lock": None,
            "lease_expires_at": None,
        }
        if outcome.failure is None:
            changes.update(
                status=Status.SUCCESSFUL, return_value=outcome.return_value, finished_at=now
            )
            return changes
        failed = attempt_error(outcome.failure, self.worker_id, record.last_attempted_at, now)
        changes["errors"] = [*as_list(record.errors), failed]
        if outcome.retry_at is None:
            changes.update(status=Status.FAILED, finished_at=now)
        else:
            # Waiting for its next attempt: READY again, due when the backoff has passed.
            changes.update(status=Status.READY, due_at=outcome.retry_at)
        return changes

    def _update_held(self, task: ClaimedTask, changes: dict[str, object]) -> int:
        return self.rows.update_held(task.record.pk, self.worker_id, changes)

    @staticmethod
    def _applied(task: ClaimedTask, changes: dict[str, object], updated: int) -> bool:
        """Mirror a stored change on the claimed record; return whether the claim held."""
        if updated:
            for field, value in changes.items():
                setattr(task.record, field, value)
        return updated == 1

    def release(self, tasks: Sequence[ClaimedTask]) -> None:
        ids = [task.record.pk for task in tasks]
        self._write(
            lambda: (
                self.tasks.held_by(self.worker_id)
                .filter(pk__in=ids)
                .update(
                    status=Status.READY, claimed_by=None, claim_lock=None, lease_expires_at=None
                )
            )
        )

    def renew_leases(self, now: datetime) -> None:
        self._write(
            lambda: self.tasks.held_by(self.worker_id).update(lease_expires_at=now + self.lease)
        )

    def count_due(self, now: datetime) -> int:
        return self._write(self.tasks.in_queues(self.queues).due(now).count)

    def load_durations(self) -> Mapping[str, Sequence[float]]:
        rows = TaskDuration.objects.using(self.using).filter(backend_name=self.backend_name)
        loaded = self._write(lambda: list(rows.values_list("task_path", "samples")))
        return {path: seconds for path, samples in loaded if (seconds := _seconds(samples))}

    def save_durations(self, durations: Mapping[str, Sequence[float]]) -> None:
        rows = [
            TaskDuration(backend_name=self.backend_name, task_path=path, samples=list(samples))
            for path, samples in sorted(durations.items())  # one lock order for every host
        ]
        targeted = connections[self.using].features.supports_update_conflicts_with_target
        self._write(
            lambda: TaskDuration.objects.using(self.using).bulk_create(
                rows,
                update_conflicts=True,
                unique_fields=["backend_name", "task_path"] if targeted else None,
                update_fields=["samples"],
            )
        )

    def record_batch(self, summary: BatchSummary) -> None:
        self._write(lambda: self._create_batch_row(summary))

    def _create_batch_row(self, summary: BatchSummary) -> None:
        assert summary.finished_at is not None
        BatchRun.objects.using(self.using).create(
            worker_id=summary.worker_id,
            host=summary.host[:255],
            pid=summary.pid,
            backend_name=self.backend_name,
            # Only a log: many long queue names are cut rather than fail the row.
            queues="*" if summary.queues is None else ",".join(sorted(summary.queues))[:255],
            started_at=summary.started_at,
            finished_at=summary.finished_at,
            duration=summary.duration,
            max_seconds=summary.max_seconds,
            max_tasks=summary.max_tasks,
            tasks_run=summary.tasks_run,
            succeeded=summary.succeeded,
            failed=summary.failed,
            recovered=summary.recovered,
            scheduled=summary.scheduled,
            backlog=summary.backlog,
            stop_reason=summary.stop_reason,
            error=summary.error,
        )

    def _write(self, write: Callable[[], T]) -> T:
        connection = connections[self.using]
        if connection.vendor == "sqlite":
            return retry_while_locked(write)
        return retry_after_reconnect(write, connection)


def attempt_error(
    failure: TaskFailure, worker_id: str | None, attempted_at: datetime | None, now: datetime
) -> dict[str, object]:
    """Describe a failed attempt for the row's error list: the error, who ran it, and when."""
    return {
        **asdict(failure),
        "worker_id": worker_id,
        "attempted_at": None if attempted_at is None else attempted_at.isoformat(),
        "recorded_at": now.isoformat(),
    }


def retry_while_locked(write: Callable[[], T], patience: float = SQLITE_BUSY_PATIENCE) -> T:
    """Retry a SQLite write that failed because another process holds the write lock."""
    deadline = time.monotonic() + patience
    delay = 0.01
    while True:
        try:
            return write()
        except OperationalError as e:
            if "locked" not in str(e) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def retry_after_reconnect(
    write: Callable[[], T], connection: BaseDatabaseWrapper, patience: float = RECONNECT_PATIENCE
) -> T:
    """Retry a statement whose connection was lost, on a new connection, for a short while."""
    deadline = time.monotonic() + patience
    delay = 0.1
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError):
            # Inside a transaction a new connection would silently lose the earlier
            # statements. Outside one, what the driver calls operational (lost connection,
            # server restart, deadlock, lock timeout) is worth one more try.
            if connection.in_atomic_block or time.monotonic() + delay > deadline:
                raise
        # Closing a dead socket may fail; Django drops the connection either way.
        with contextlib.suppress(DatabaseError):
            connection.close()
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def _seconds(samples: object) -> list[float]:
    """Return the durations a stored row holds, leaving out anything that is not one."""
    return [
        float(value)
        for value in as_list(samples)
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    ]
