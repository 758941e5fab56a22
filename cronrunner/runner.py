"""One batch from start to end: lock, recover, fire schedules, drain, log."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cronrunner.budget import Budget
from cronrunner.clock import Clock
from cronrunner.drain import Drain, DrainSettings, Executor, StopFlag, TaskReport
from cronrunner.errors import LockHeld
from cronrunner.heartbeat import Heartbeat
from cronrunner.lock import RunLock
from cronrunner.store import BatchSummary, StopReason, TaskStore

logger = logging.getLogger("cronrunner")


@dataclass(frozen=True, slots=True)
class RunSettings:
    """How long and how much one run may work."""

    max_seconds: float
    max_tasks: int | None = None
    claim_size: int = 32
    lease_seconds: float = 120.0
    queues: frozenset[str] | None = None
    #: Keep looking for newly due tasks every this many seconds until the budget is spent.
    poll_seconds: float | None = None
    #: See DrainSettings: off, a task whose typical duration exceeds the budget never starts.
    first_task_always_starts: bool = True


class BatchHooks(Protocol):
    """Watch a batch from outside: monitors, metrics. A hook must never raise."""

    def batch_started(self, summary: BatchSummary) -> None:
        """Called once the lock is taken, before any work."""

    def task_finished(self, report: TaskReport) -> None:
        """Called after each task's outcome is recorded, on the thread that ran it."""

    def batch_finished(self, summary: BatchSummary) -> None:
        """Called once the batch log row is stored, whether the batch ended well or not."""


def run_batch(
    store: TaskStore,
    executors: Sequence[Executor],
    lock: RunLock,
    clock: Clock,
    settings: RunSettings,
    *,
    worker_id: str,
    stop: StopFlag | None = None,
    report: Callable[[TaskReport], None] | None = None,
    before_drain: Callable[[], int] | None = None,
    idle: Callable[[], None] | None = None,
    thread_cleanup: Callable[[], None] | None = None,
    hooks: BatchHooks | None = None,
) -> BatchSummary:
    """Run one batch, one thread per executor, and return its summary, which is also stored
    in the batch log; `idle` runs once, the first time no task is due. `hooks` see every
    batch that took the lock, and none that found it held."""
    summary = BatchSummary(
        worker_id=worker_id,
        host=socket.gethostname(),
        pid=os.getpid(),
        started_at=clock.now(),
        max_seconds=settings.max_seconds,
        max_tasks=settings.max_tasks,
        queues=settings.queues,
    )
    budget = Budget(settings.max_seconds, clock)
    try:
        lock.acquire()
    except LockHeld as e:
        summary.stop_reason = StopReason.LOCK_HELD
        summary.error = str(e)
        _close(store, summary, clock, budget)
        return summary
    if hooks is not None:
        report = _both(report, hooks.task_finished)
    try:
        if hooks is not None:
            hooks.batch_started(summary)
        summary.recovered = store.recover(clock.now())
        if before_drain is not None:
            summary.scheduled = before_drain()
        with Heartbeat(
            lambda: store.renew_leases(clock.now()),
            interval=settings.lease_seconds / 4,
            cleanup=thread_cleanup,
        ):
            Drain(
                store,
                budget,
                clock,
                summary,
                DrainSettings(
                    claim_size=settings.claim_size,
                    poll_seconds=settings.poll_seconds,
                    first_task_always_starts=settings.first_task_always_starts,
                ),
                stop=stop,
                report=report,
                idle=idle,
                thread_cleanup=thread_cleanup,
            ).run(executors)
        if summary.stop_reason is not StopReason.DRAINED:
            # Left-over work, recorded so that a backlog growing run after run can be noticed.
            summary.backlog = store.count_due(clock.now())
    except BaseException as e:
        summary.stop_reason = (
            StopReason.ERROR if isinstance(e, Exception) else StopReason.INTERRUPTED
        )
        summary.error = f"{type(e).__name__}: {e}"
        _close_after_error(store, summary, clock, budget)
        if hooks is not None:
            hooks.batch_finished(summary)
        raise
    finally:
        lock.release()
    _close(store, summary, clock, budget)
    if hooks is not None:
        hooks.batch_finished(summary)
    return summary


def _both(
    first: Callable[[TaskReport], None] | None, second: Callable[[TaskReport], None]
) -> Callable[[TaskReport], None]:
    if first is None:
        return second

    def both(report: TaskReport) -> None:
        first(report)
        second(report)

    return both


def _close(store: TaskStore, summary: BatchSummary, clock: Clock, budget: Budget) -> None:
    summary.finished_at = clock.now()
    summary.duration = budget.elapsed
    store.record_batch(summary)


def _close_after_error(
    store: TaskStore, summary: BatchSummary, clock: Clock, budget: Budget
) -> None:
    # The store may be the very thing that failed; the original error matters more.
    try:
        _close(store, summary, clock, budget)
    except Exception:
        # Not a warning: the run's own error, which the caller reports, says what is wrong
        # (a read-only or unreachable database refuses this write too).
        logger.debug("Could not store the batch log record of a failed run.", exc_info=True)


def describe_batch(summary: BatchSummary) -> str:
    """Say in one line what a run did and why it stopped."""
    if summary.stop_reason is StopReason.LOCK_HELD:
        return f"batch skipped: {summary.error}"
    line = (
        f"batch finished: {summary.tasks_run} run ({summary.succeeded} succeeded, "
        f"{summary.failed} failed), {summary.recovered} recovered, {summary.scheduled} scheduled, "
        f"in {summary.duration:.1f}s of a {summary.max_seconds:g}s budget; "
        f"stopped: {summary.stop_reason}"
    )
    if summary.error:
        line += f" ({summary.error})"
    return line
