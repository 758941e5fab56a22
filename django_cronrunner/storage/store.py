"""The task store on the Django ORM: claim, start, finish, release and recover rows."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import connections, transaction
from django.db.models import Q

from cronrunner.recovery import recover_orphan
from cronrunner.store import BatchSummary, ClaimedTask, Outcome, Status, TaskFailure
from django_cronrunner.models import (
    CANCELLED_PATH,
    TaskRecord,
    TaskRecordQuerySet,
    as_list,
)
from django_cronrunner.storage import run_records
from django_cronrunner.storage.limits import FREE_SLOT, take_slots, within_limits
from django_cronrunner.storage.rowsql import Held, RowStatements
from django_cronrunner.storage.transient import retry_after_reconnect, retry_while_locked
from django_cronrunner.storage.uniqueness import ends_at_start

T = TypeVar("T")

logger = logging.getLogger("cronrunner")

#: The changes that end a claim, in every UPDATE that moves a row out of RUNNING.
UNCLAIMED: dict[str, object] = {
    "claimed_by": None,
    "claimed_at": None,
    "claim_lock": None,
    "lease_expires_at": None,
}

#: How many times a claim is made again when every row it took lost its key's last slot to
#: another run: each claim leaves the keys found full, so a few suffice.
SLOT_RACE_CLAIMS = 3


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
        # A task asked to stop is not run again.
        requeue = decision.requeue and record.cancel_requested_at is None
        changes: dict[str, object] = {
            "status": Status.READY if requeue else Status.FAILED,
            **UNCLAIMED,
            **FREE_SLOT,
        }
        errors = as_list(record.errors)
        if decision.failure is not None:
            lost = attempt_error(decision.failure, record.claimed_by, record.last_attempted_at, now)
            errors = changes["errors"] = [*errors, lost]
        if decision.requeue and not requeue:
            stopped = stop_error("a stop was requested; it was not run again.", now)
            changes["errors"] = [*errors, stopped]
        if requeue:
            changes["due_at"] = decision.due_again(record.due_at, now)
        else:
            changes.update(finished_at=now, unique_key=None)
        # Filtering on the claim and lease as read makes two runs recovering at once settle a
        # task once, and leaves it alone if its run renewed the lease since (it is alive).
        unsettled = self.tasks.running().filter(
            pk=record.pk,
            claimed_by=record.claimed_by,
            claimed_at=record.claimed_at,
            lease_expires_at=record.lease_expires_at,
        )
        return self._write(lambda: unsettled.update(**changes))

    def claim(
        self, now: datetime, limit: int, skip_paths: frozenset[str] = frozenset()
    ) -> Sequence[ClaimedTask]:
        if self.queues is not None and not self.queues:
            return []  # no queue at all; the raw PostgreSQL claim cannot compile an empty IN
        for _ in range(SLOT_RACE_CLAIMS):
            records, over_limit = self._claim_once(now, limit, skip_paths)
            # Every row claimed lost its key's last slot to another run since the claim read
            # it: due tasks of other keys may still wait, and an empty answer means "drained".
            if records or not over_limit:
                break
        return [
            ClaimedTask(
                id=str(record.pk),
                task_path=record.task_path,
                priority=record.priority,
                queue_name=record.queue_name,
                record=record,
                limited=record.concurrency_slot is not None,
            )
            for record in records
        ]

    def _claim_once(
        self, now: datetime, limit: int, skip_paths: frozenset[str]
    ) -> tuple[list[TaskRecord], int]:
        """Claim up to `limit` due rows and give each with a key a slot; return the rows that
        may run, and how many were handed back over their key's limit."""
        claim_changes = {
            "status": Status.RUNNING,
            "claimed_by": self.worker_id,
            "claimed_at": now,
            "claim_lock": self.lock_key,
            "lease_expires_at": now + self.lease,
        }
        if connections[self.using].vendor == "mysql":
            due = self._due(now, skip_paths)
            records = self._write(lambda: self._claim_skip_locked(due, limit, claim_changes))
        else:
            picked = self._picked(now, limit, skip_paths)
            records = self._write(lambda: self._claim_returning(picked, claim_changes))
        records.sort(key=lambda record: (-record.priority, record.due_at, record.enqueued_at))
        # In claim order, so that the best tasks of a key get its free slots.
        records, over_limit = self._write(lambda: take_slots(self.using, self.worker_id, records))
        if over_limit:
            self._release_records(over_limit, now)
        return records, len(over_limit)

    def _due(self, now: datetime, skip_paths: frozenset[str]) -> TaskRecordQuerySet:
        due = within_limits(self.tasks.in_queues(self.queues).due(now))
        if skip_paths:
            due = due.exclude(task_path__in=sorted(skip_paths))
        return due

    def _picked(
        self, now: datetime, limit: int, skip_paths: frozenset[str]
    ) -> tuple[str, list[Any]]:
        """Return the SQL and parameters that select the ids of the next `limit` due rows."""
        return self.rows.compiled_for(
            (limit, skip_paths),
            lambda due_by: self._due(due_by, skip_paths).values("pk")[:limit],
            now,
        )

    def _claim_returning(
        self, picked: tuple[str, list[Any]], changes: dict[str, object]
    ) -> list[TaskRecord]:
        # One autocommitted UPDATE ... RETURNING picks, marks and reads the batch: no
        # transaction round trips. SQLite takes its write lock as the statement starts, so a
        # busy database is waited on (busy timeout) rather than failing a read-to-write
        # upgrade; PostgreSQL holds row locks only while it runs, skipping rows another run
        # is claiming (ARRAY() makes the locking sub-select run exactly once).
        connection = connections[self.using]
        quote = connection.ops.quote_name
        picked_sql, picked_params = picked
        if connection.vendor == "postgresql":
            ids = f"= ANY(ARRAY({picked_sql} FOR UPDATE SKIP LOCKED))"
        else:
            ids = f"IN ({picked_sql})"
        assignments, params = self.rows.assignments(changes)
        pk_column = quote(str(TaskRecord._meta.pk.column))
        sql = (
            f"UPDATE {quote(TaskRecord._meta.db_table)} SET {assignments} "
            f"WHERE {pk_column} {ids} RETURNING *"
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
        updated = self._write(lambda: self._update_held(_held(task, starting=True), changes))
        return self._started(task, changes, updated, now)

    def finish(self, task: ClaimedTask, outcome: Outcome, now: datetime) -> bool:
        changes = self._finish_changes(task.record, outcome, now)
        updated = self._write(lambda: self._update_held(_held(task), changes))
        return self._applied(task, changes, updated)

    def finish_then_start(
        self, task: ClaimedTask, outcome: Outcome, next_task: ClaimedTask, now: datetime
    ) -> tuple[bool, bool]:
        finished = self._finish_changes(task.record, outcome, now)
        starting = self._start_changes(next_task.record, now)

        # One commit instead of two: a commit (a WAL flush) is most of what a task costs.
        recorded, started = self._write(
            lambda: self.rows.update_two_held(
                (_held(task), finished),
                (_held(next_task, starting=True), starting),
                self.worker_id,
            )
        )
        return (
            self._applied(task, finished, recorded),
            self._started(next_task, starting, started, now),
        )

    def _started(
        self, task: ClaimedTask, changes: dict[str, object], updated: int, now: datetime
    ) -> bool:
        """Mirror a start; for a start refused, say why, and fail a task whose stop was
        requested between its claim and its start, which is then never run."""
        if self._applied(task, changes, updated):
            return True
        if self._write(lambda: self._fail_cancelled([task.record], now)):
            logger.warning(
                "Task %s was asked to stop before it started: it is FAILED (TaskCancelled) "
                "and was not run.",
                task.id,
            )
        else:
            logger.warning("Task %s was taken over by another run before it started.", task.id)
        return False

    def _start_changes(self, record: TaskRecord, now: datetime) -> dict[str, object]:
        changes: dict[str, object] = {
            "worker_ids": [*as_list(record.worker_ids), self.worker_id],
            "started_at": record.started_at or now,
            "last_attempted_at": now,
        }
        if ends_at_start(record.unique_key):
            changes["unique_key"] = None  # an equal call enqueued from now on is stored
        return changes

    def _finish_changes(
        self, record: TaskRecord, outcome: Outcome, now: datetime
    ) -> dict[str, object]:
        changes: dict[str, object] = dict(UNCLAIMED)
        # Only rows that hold them: the statements of other rows stay as they were.
        if record.concurrency_slot is not None:
            changes.update(FREE_SLOT)
        finished = outcome.failure is None or outcome.retry_at is None
        if finished and record.unique_key is not None:
            changes["unique_key"] = None
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

    def _update_held(self, held: Held, changes: dict[str, object]) -> int:
        return self.rows.update_held(held, self.worker_id, changes)

    @staticmethod
    def _applied(task: ClaimedTask, changes: dict[str, object], updated: int) -> bool:
        """Mirror a stored change on the claimed record; return whether the claim held."""
        if updated:
            for field, value in changes.items():
                setattr(task.record, field, value)
        return updated == 1

    def release(self, tasks: Sequence[ClaimedTask], now: datetime) -> None:
        self._release_records([task.record for task in tasks], now)

    def _release_records(self, records: Sequence[TaskRecord], now: datetime) -> None:
        """Hand unstarted claims back to the queue, but fail those asked to stop meanwhile."""
        if not records:
            return
        self._write(lambda: self._fail_cancelled(records, now))
        self._write(
            lambda: self._unstarted(records).update(status=Status.READY, **UNCLAIMED, **FREE_SLOT)
        )

    def _unstarted(self, records: Sequence[TaskRecord]) -> TaskRecordQuerySet:
        """Select the rows of `records` this run still holds under the claims that read them."""
        claims = Q()
        for record in records:
            claims |= Q(pk=record.pk, claimed_at=record.claimed_at)
        return self.tasks.held_by(self.worker_id).filter(claims)

    def _fail_cancelled(self, records: Sequence[TaskRecord], now: datetime) -> int:
        """Fail the unstarted claims of `records` whose stop was requested; return how many."""
        failed = 0
        unstarted = self._unstarted(records).filter(cancel_requested_at__isnull=False)
        for pk, errors in unstarted.values_list("pk", "errors"):
            stopped = stop_error("a stop was requested before it started.", now)
            failed += unstarted.filter(pk=pk).update(
                status=Status.FAILED,
                **UNCLAIMED,
                unique_key=None,
                finished_at=now,
                errors=[*as_list(errors), stopped],
                **FREE_SLOT,
            )
        return failed

    def renew_leases(self, now: datetime) -> None:
        self._write(
            lambda: self.tasks.held_by(self.worker_id).update(lease_expires_at=now + self.lease)
        )

    def count_due(self, now: datetime) -> int:
        return self._write(self.tasks.in_queues(self.queues).due(now).count)

    def load_durations(self) -> Mapping[str, Sequence[float]]:
        return self._write(lambda: run_records.load_durations(self.using, self.backend_name))

    def save_durations(self, durations: Mapping[str, Sequence[float]]) -> None:
        self._write(lambda: run_records.save_durations(self.using, self.backend_name, durations))

    def record_batch(self, summary: BatchSummary) -> None:
        self._write(lambda: run_records.record_batch(self.using, self.backend_name, summary))

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


def stop_error(why: str, now: datetime) -> dict[str, object]:
    """Describe, for the row's error list, a task that ended unrun because a stop was asked."""
    return attempt_error(TaskFailure(CANCELLED_PATH, f"TaskCancelled: {why}\n"), None, None, now)


def _held(task: ClaimedTask, *, starting: bool = False) -> Held:
    """Name the claim of `task` a write belongs to."""
    return Held(task.record.pk, task.record.claimed_at, starting)
