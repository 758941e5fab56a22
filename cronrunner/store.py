"""The storage boundary the drain loop talks to, and the records that cross it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A task this run has claimed; `record` is the store's own row, opaque to the core."""

    id: str
    task_path: str
    priority: int
    queue_name: str
    record: Any = field(default=None, compare=False, repr=False)
    #: It holds one of the few slots of a concurrency limit: storing its outcome frees the
    #: slot for a due task that a claim had to leave.
    limited: bool = False


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """Why an attempt failed, as Django's TaskError records it."""

    exception_class_path: str
    traceback: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt: a return value or a failure."""

    return_value: Any = None
    failure: TaskFailure | None = None
    #: For a failure that will be tried again: the earliest time of the next attempt.
    retry_at: datetime | None = None

    @property
    def succeeded(self) -> bool:
        return self.failure is None


class Status(StrEnum):
    """A task's state; the values are Django's TaskResultStatus values."""

    READY = "READY"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    SUCCESSFUL = "SUCCESSFUL"


class StopReason(StrEnum):
    """Why a run stopped."""

    DRAINED = "drained"
    BUDGET_SPENT = "budget spent"
    MAX_TASKS = "max tasks"
    LOCK_HELD = "lock held"
    INTERRUPTED = "interrupted"
    ERROR = "error"


@dataclass(slots=True)
class BatchSummary:
    """One run, as the batch log records it."""

    worker_id: str
    host: str
    pid: int
    started_at: datetime
    max_seconds: float
    max_tasks: int | None
    queues: frozenset[str] | None
    finished_at: datetime | None = None
    duration: float = 0.0
    tasks_run: int = 0
    succeeded: int = 0
    failed: int = 0
    recovered: int = 0
    scheduled: int = 0
    #: Due tasks left when the run stopped (0 when it drained everything).
    backlog: int = 0
    stop_reason: StopReason = StopReason.DRAINED
    error: str = ""
    #: Task paths left in the queue because their typical duration (the value, in seconds)
    #: did not fit the budget left.
    too_long: dict[str, float] = field(default_factory=dict)


class TaskStore(Protocol):
    """Persist tasks for one run; every method commits before it returns."""

    def recover(self, now: datetime) -> int:
        """Put back or fail tasks whose runner died; return how many."""

    def claim(
        self, now: datetime, limit: int, skip_paths: frozenset[str] = frozenset()
    ) -> Sequence[ClaimedTask]:
        """Mark up to `limit` due tasks as this run's, highest priority first, then oldest;
        leave the tasks of `skip_paths` in the queue."""

    def start(self, task: ClaimedTask, now: datetime) -> bool:
        """Record that an attempt begins; return False, having logged why, if it may not: the
        claim was lost, or a stop was requested since the claim."""

    def finish(self, task: ClaimedTask, outcome: Outcome, now: datetime) -> bool:
        """Record the attempt's outcome; return False if the attempt no longer holds the task
        (its claim was lost, even to a later claim of this same run)."""

    def finish_then_start(
        self, task: ClaimedTask, outcome: Outcome, next_task: ClaimedTask, now: datetime
    ) -> tuple[bool, bool]:
        """Record one outcome and begin the next attempt in one commit; say which held."""

    def release(self, tasks: Sequence[ClaimedTask], now: datetime) -> None:
        """Hand claimed tasks that never started back to the queue."""

    def renew_leases(self, now: datetime) -> None:
        """Extend the lease of every task this run holds."""

    def count_due(self, now: datetime) -> int:
        """Count the due tasks this run could claim."""

    def record_batch(self, summary: BatchSummary) -> None:
        """Store the run's summary in the batch log."""

    def load_durations(self) -> Mapping[str, Sequence[float]]:
        """Return the recent attempt durations of each task path, oldest first."""

    def save_durations(self, durations: Mapping[str, Sequence[float]]) -> None:
        """Store the recent attempt durations of the given task paths, replacing theirs."""
