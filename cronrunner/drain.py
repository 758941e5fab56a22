"""The drain loop: claim due tasks, run them one by one, record each before the next."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cronrunner.budget import Budget
from cronrunner.clock import Clock
from cronrunner.store import BatchSummary, ClaimedTask, Outcome, StopReason, TaskStore

logger = logging.getLogger("cronrunner")


class Executor(Protocol):
    """Run claimed tasks; the core never knows what a task is."""

    def run(self, task: ClaimedTask) -> Outcome:
        """Run one attempt and describe how it ended; never raise for the task's own errors."""

    def finished(self, task: ClaimedTask, outcome: Outcome) -> None:
        """React to an outcome once it is stored (e.g. send a signal)."""


@dataclass(frozen=True, slots=True)
class TaskReport:
    """What happened to one task in this run."""

    task: ClaimedTask
    outcome: Outcome
    duration: float
    recorded: bool


class StopFlag:
    """Set from a signal handler to ask the loop to stop claiming."""

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True


def drain(
    store: TaskStore,
    executor: Executor,
    budget: Budget,
    clock: Clock,
    summary: BatchSummary,
    *,
    claim_size: int,
    stop: StopFlag | None = None,
    report: Callable[[TaskReport], None] | None = None,
) -> None:
    """Run due tasks until none is left, the budget is spent, `max_tasks` ran or a stop is asked."""
    stop = stop or StopFlag()
    unstarted: list[ClaimedTask] = []
    try:
        while True:
            reason = _reason_to_stop(budget, summary, stop)
            if reason is not None:
                summary.stop_reason = reason
                return
            limit = claim_size
            if summary.max_tasks is not None:
                limit = min(limit, summary.max_tasks - summary.tasks_run)
            unstarted = list(store.claim(clock.now(), limit))
            if not unstarted:
                summary.stop_reason = StopReason.DRAINED
                return
            while unstarted:
                reason = _reason_to_stop(budget, summary, stop)
                if reason is not None:
                    summary.stop_reason = reason
                    return
                _run_one(store, executor, clock, summary, unstarted.pop(0), report)
    finally:
        if unstarted:
            store.release(unstarted)


def _reason_to_stop(budget: Budget, summary: BatchSummary, stop: StopFlag) -> StopReason | None:
    if stop.requested:
        return StopReason.INTERRUPTED
    if budget.spent():
        return StopReason.BUDGET_SPENT
    if summary.max_tasks is not None and summary.tasks_run >= summary.max_tasks:
        return StopReason.MAX_TASKS
    return None


def _run_one(
    store: TaskStore,
    executor: Executor,
    clock: Clock,
    summary: BatchSummary,
    task: ClaimedTask,
    report: Callable[[TaskReport], None] | None,
) -> None:
    if not store.start(task, clock.now()):
        logger.warning("Task %s was taken over by another run before it started.", task.id)
        return
    started = clock.monotonic()
    outcome = executor.run(task)
    duration = clock.monotonic() - started
    summary.tasks_run += 1
    recorded = store.finish(task, outcome, clock.now())
    if recorded:
        if outcome.succeeded:
            summary.succeeded += 1
        else:
            summary.failed += 1
        executor.finished(task, outcome)
    else:
        logger.warning(
            "Task %s was taken over by another run while it ran; its result was not stored.",
            task.id,
        )
    if report is not None:
        report(TaskReport(task=task, outcome=outcome, duration=duration, recorded=recorded))


def describe_task(report: TaskReport) -> str:
    """Say in one line how a task ended, without its arguments."""
    if not report.recorded:
        outcome = "LOST CLAIM"
    elif report.outcome.failure is not None:
        outcome = f"FAILED ({report.outcome.failure.exception_class_path})"
        if report.outcome.retry_at is not None:
            outcome += f", retrying from {report.outcome.retry_at:%Y-%m-%d %H:%M:%S %Z}"
    else:
        outcome = "SUCCESSFUL"
    task = report.task
    return f"task {task.id} {task.task_path} {outcome} in {report.duration:.3f}s"
