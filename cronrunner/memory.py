"""An in-memory task store with the same semantics as the database one, for tests."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cronrunner.recovery import recover_orphan
from cronrunner.store import BatchSummary, ClaimedTask, Outcome, Status, TaskFailure

logger = logging.getLogger("cronrunner")


@dataclass
class MemoryTask:
    """One stored task."""

    id: str
    task_path: str
    due_at: datetime
    priority: int = 0
    queue_name: str = "default"
    max_attempts: int = 1
    status: Status = Status.READY
    claimed_by: str | None = None
    claim_lock: str | None = None
    lease_expires_at: datetime | None = None
    worker_ids: list[str] = field(default_factory=list)
    errors: list[TaskFailure] = field(default_factory=list)
    return_value: Any = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: When the run in claimed_by claimed it: with claimed_by, it names the claim.
    claimed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MemoryClaim:
    """What a ClaimedTask of the memory store holds: the task, and when this claim took it."""

    task: MemoryTask
    claimed_at: datetime


@dataclass
class MemoryDatabase:
    """The state several MemoryStore runs share, like one database."""

    tasks: dict[str, MemoryTask] = field(default_factory=dict)
    batches: list[BatchSummary] = field(default_factory=list)
    durations: dict[str, list[float]] = field(default_factory=dict)
    mutex: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        task_path: str,
        due_at: datetime,
        *,
        priority: int = 0,
        queue_name: str = "default",
        max_attempts: int = 1,
    ) -> MemoryTask:
        """Enqueue a task."""
        task = MemoryTask(
            id=uuid.uuid4().hex,
            task_path=task_path,
            due_at=due_at,
            priority=priority,
            queue_name=queue_name,
            max_attempts=max_attempts,
        )
        with self.mutex:
            self.tasks[task.id] = task
        return task


class MemoryStore:
    """Implement TaskStore over a MemoryDatabase for one run."""

    def __init__(
        self,
        db: MemoryDatabase,
        *,
        worker_id: str,
        lock_key: str,
        lease_seconds: float = 120.0,
        queues: frozenset[str] | None = None,
    ) -> None:
        self.db = db
        self.worker_id = worker_id
        self.lock_key = lock_key
        self.lease = timedelta(seconds=lease_seconds)
        self.queues = queues

    def recover(self, now: datetime) -> int:
        recovered = 0
        with self.db.mutex:
            for task in self.db.tasks.values():
                if task.status is not Status.RUNNING or task.claimed_by == self.worker_id:
                    continue
                expired = task.lease_expires_at is not None and task.lease_expires_at < now
                if not (expired or task.claim_lock == self.lock_key):
                    continue
                decision = recover_orphan(task.worker_ids, task.claimed_by or "", task.max_attempts)
                if decision.failure is not None:
                    task.errors.append(decision.failure)
                if decision.requeue:
                    task.status = Status.READY
                    task.due_at = decision.due_again(task.due_at, now)
                else:
                    task.status = Status.FAILED
                    task.finished_at = now
                task.claimed_by = task.claimed_at = task.claim_lock = task.lease_expires_at = None
                recovered += 1
        return recovered

    def claim(
        self, now: datetime, limit: int, skip_paths: frozenset[str] = frozenset()
    ) -> Sequence[ClaimedTask]:
        with self.db.mutex:
            due = [
                task
                for task in self.db.tasks.values()
                if task.status is Status.READY
                and task.due_at <= now
                and (self.queues is None or task.queue_name in self.queues)
                and task.task_path not in skip_paths
            ]
            due.sort(key=lambda task: (-task.priority, task.due_at))
            claimed = due[:limit]
            for task in claimed:
                task.status = Status.RUNNING
                task.claimed_by = self.worker_id
                task.claimed_at = now
                task.claim_lock = self.lock_key
                task.lease_expires_at = now + self.lease
        return [
            ClaimedTask(
                task.id, task.task_path, task.priority, task.queue_name, MemoryClaim(task, now)
            )
            for task in claimed
        ]

    def _held(self, claimed: ClaimedTask) -> MemoryTask | None:
        """Return the task of `claimed` while this run holds it under that claim."""
        claim: MemoryClaim = claimed.record
        task = claim.task
        if (
            task.status is not Status.RUNNING
            or task.claimed_by != self.worker_id
            or task.claimed_at != claim.claimed_at
        ):
            return None
        return task

    def start(self, task: ClaimedTask, now: datetime) -> bool:
        with self.db.mutex:
            held = self._held(task)
            if held is None:
                logger.warning("Task %s was taken over by another run before it started.", task.id)
                return False
            held.worker_ids.append(self.worker_id)
            held.started_at = held.started_at or now
        return True

    def finish(self, task: ClaimedTask, outcome: Outcome, now: datetime) -> bool:
        with self.db.mutex:
            held = self._held(task)
            if held is None:
                return False
            if outcome.failure is None:
                held.status = Status.SUCCESSFUL
                held.return_value = outcome.return_value
                held.finished_at = now
            elif outcome.retry_at is not None:
                held.status = Status.READY
                held.errors.append(outcome.failure)
                held.due_at = outcome.retry_at
            else:
                held.status = Status.FAILED
                held.errors.append(outcome.failure)
                held.finished_at = now
            held.claimed_by = held.claimed_at = held.claim_lock = held.lease_expires_at = None
            return True

    def finish_then_start(
        self, task: ClaimedTask, outcome: Outcome, next_task: ClaimedTask, now: datetime
    ) -> tuple[bool, bool]:
        return self.finish(task, outcome, now), self.start(next_task, now)

    def release(self, tasks: Sequence[ClaimedTask], now: datetime) -> None:
        with self.db.mutex:
            for task in tasks:
                held = self._held(task)
                if held is not None:
                    held.status = Status.READY
                    held.claimed_by = held.claimed_at = held.claim_lock = held.lease_expires_at = (
                        None
                    )

    def renew_leases(self, now: datetime) -> None:
        with self.db.mutex:
            for task in self.db.tasks.values():
                if task.status is Status.RUNNING and task.claimed_by == self.worker_id:
                    task.lease_expires_at = now + self.lease

    def count_due(self, now: datetime) -> int:
        with self.db.mutex:
            return sum(
                task.status is Status.READY
                and task.due_at <= now
                and (self.queues is None or task.queue_name in self.queues)
                for task in self.db.tasks.values()
            )

    def record_batch(self, summary: BatchSummary) -> None:
        with self.db.mutex:
            self.db.batches.append(summary)

    def load_durations(self) -> Mapping[str, Sequence[float]]:
        with self.db.mutex:
            return {path: list(samples) for path, samples in self.db.durations.items()}

    def save_durations(self, durations: Mapping[str, Sequence[float]]) -> None:
        with self.db.mutex:
            self.db.durations.update({path: list(samples) for path, samples in durations.items()})
