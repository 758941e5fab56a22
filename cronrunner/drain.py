"""The drain loop: run due tasks by priority, on one thread or several, each result stored
before its thread starts another task."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cronrunner.budget import Budget
from cronrunner.clock import Clock
from cronrunner.durations import DurationHistory
from cronrunner.store import BatchSummary, ClaimedTask, Outcome, StopReason, TaskStore

logger = logging.getLogger("cronrunner")

#: How often a polling run looks at its stop flag and budget while it waits.
_POLL_STEP = 0.25

#: A task that would end this close after the budget still fits: measured durations are no
#: more exact than this.
_FIT_TOLERANCE = 0.001

#: A run claims about as many tasks as it expects to start within this many seconds: fast
#: tasks share a round trip, while a slow task is claimed alone, so a more urgent task
#: enqueued meanwhile never waits behind a pile of claimed ones.
CLAIM_AHEAD_SECONDS = 0.1


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


@dataclass(frozen=True, slots=True)
class DrainSettings:
    """How the loop claims tasks and what it does when none is due."""

    #: At most this many tasks claimed per round trip by a single thread (see
    #: CLAIM_AHEAD_SECONDS); several threads claim one at a time, so that no thread sits on
    #: due tasks while another starts a lower-priority one.
    claim_size: int = 32
    #: When set, an empty queue is looked at again every this many seconds until the budget
    #: is spent, instead of ending the run.
    poll_seconds: float | None = None
    #: The first task starts whatever its typical duration, so that a budget shorter than a
    #: task still makes progress. Off where a task that outlasts the budget is killed (a web
    #: request's timeout): it would be started, and killed, call after call.
    first_task_always_starts: bool = True


@dataclass(frozen=True, slots=True)
class _Ran:
    """An attempt that has run and whose outcome is not stored yet."""

    task: ClaimedTask
    outcome: Outcome
    duration: float


class Drain:
    """Run due tasks until none is left, the budget is spent, `max_tasks` ran or a stop is asked."""

    def __init__(
        self,
        store: TaskStore,
        budget: Budget,
        clock: Clock,
        summary: BatchSummary,
        settings: DrainSettings,
        *,
        stop: StopFlag | None = None,
        report: Callable[[TaskReport], None] | None = None,
        idle: Callable[[], None] | None = None,
        thread_cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.budget = budget
        self.clock = clock
        self.summary = summary
        self.settings = settings
        self.stop = stop or StopFlag()
        self.report = report
        self.idle = idle
        self.thread_cleanup = thread_cleanup
        self._lock = threading.Lock()
        self._reserved = 0  # tasks started or about to start; checked against max_tasks
        self._idled = False
        self._working = 0  # threads not yet done: claiming, running, or waiting on the others
        # Notified when a thread claimed, finished a task or left: news for a waiting thread.
        self._progress = threading.Condition(self._lock)
        self._halt = threading.Event()  # another thread failed: stop claiming
        self.history = DurationHistory(store.load_durations)
        self._started_any = False
        #: Task paths whose typical duration no longer fits the budget left: the budget only
        #: shrinks, so they stay out of this run's claims.
        self._too_long: dict[str, float] = {}

    def run(self, executors: Sequence[Executor]) -> None:
        """Drain with one thread per executor and set the summary's stop reason."""
        if not executors:
            raise ValueError("A drain needs at least one executor.")
        self._working = len(executors)
        if len(executors) == 1:
            self._finish([self._work(executors[0], self.settings.claim_size)])
            return
        reasons: list[StopReason] = []
        errors: list[BaseException] = []

        def work(executor: Executor) -> None:
            try:
                reasons.append(self._work(executor, 1))
            except BaseException as e:  # handed to the main thread, which raises it
                errors.append(e)
                self._halt.set()
            finally:
                if self.thread_cleanup is not None:
                    self.thread_cleanup()

        # Daemon threads: after a second shutdown signal the process must not wait for them.
        threads = [
            threading.Thread(target=work, args=(executor,), name=f"cronrunner-{n}", daemon=True)
            for n, executor in enumerate(executors, 1)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        finally:
            self._halt.set()
        if errors:
            raise errors[0]
        self._finish(reasons)

    def _finish(self, reasons: list[StopReason]) -> None:
        """Set the stop reason and store the durations this run measured."""
        if self._too_long:
            # Tasks were left because the budget could not fit them.
            reasons.append(StopReason.BUDGET_SPENT)
            self.summary.too_long = dict(self._too_long)
        # The run stopped for the most pressing reason any of its threads met.
        precedence = (StopReason.INTERRUPTED, StopReason.BUDGET_SPENT, StopReason.MAX_TASKS)
        self.summary.stop_reason = next(
            (reason for reason in precedence if reason in reasons), StopReason.DRAINED
        )
        changed = self.history.changed()
        if changed:
            self.store.save_durations(changed)

    def _work(self, executor: Executor, claim_size: int) -> StopReason:
        unstarted: list[ClaimedTask] = []
        ran: _Ran | None = None
        claimed_at, claimed = 0.0, 0
        counted = True  # this thread is in self._working
        try:
            while True:
                reason = self._reserve()
                if reason is None and not unstarted:
                    limit = self._limit(_paced(claim_size, claimed, claimed_at, self.clock))
                    claimed_at = self.clock.monotonic()
                    with self._lock:
                        skip_paths = frozenset(self._too_long)
                    unstarted = list(self.store.claim(self.clock.now(), limit, skip_paths))
                    claimed = len(unstarted)
                    with self._progress:
                        self._progress.notify_all()
                    if not unstarted:
                        self._unreserve()
                        if ran is not None:
                            # Never sit on a result while waiting for work.
                            last, ran = ran, None
                            self._store(executor, last, None)
                            retry_at = last.outcome.retry_at
                            if retry_at is not None and retry_at <= self.clock.now():
                                # Its retry is due already: it runs in this run, budget allowing.
                                continue
                            if last.task.limited:
                                continue  # its slot is free now: a task the claim left may fit
                        if self._wait_for_work():
                            continue
                        counted = False  # the wait took this thread out of the count
                        reason = StopReason.DRAINED
                if reason is not None:
                    return reason
                task = unstarted.pop(0)
                if not self._fits(task):
                    # The rest of the claim of the same path cannot fit either.
                    left = [task, *(t for t in unstarted if t.task_path == task.task_path)]
                    unstarted = [t for t in unstarted if t.task_path != task.task_path]
                    self.store.release(left, self.clock.now())
                    self._unreserve()
                    continue
                done, ran = ran, None
                if not self._store(executor, done, task):
                    self._unreserve()
                    continue
                ran = self._run(executor, task)
        finally:
            if counted:
                with self._progress:
                    self._working -= 1
                    self._progress.notify_all()
            if ran is not None:
                self._store(executor, ran, None)
            if unstarted:
                self.store.release(unstarted, self.clock.now())

    def _reserve(self) -> StopReason | None:
        """Take a slot for one more task, or say why no task may start."""
        with self._lock:
            if self.stop.requested or self._halt.is_set():
                return StopReason.INTERRUPTED
            if self.budget.spent():
                return StopReason.BUDGET_SPENT
            max_tasks = self.summary.max_tasks
            if max_tasks is not None and self._reserved >= max_tasks:
                return StopReason.MAX_TASKS
            self._reserved += 1
            return None

    def _unreserve(self) -> None:
        with self._lock:
            self._reserved -= 1

    def _limit(self, claim_size: int) -> int:
        max_tasks = self.summary.max_tasks
        if max_tasks is None:
            return claim_size
        # This task's slot is already reserved.
        return max(1, min(claim_size, max_tasks - self._reserved + 1))

    def _fits(self, task: ClaimedTask) -> bool:
        """Say whether `task` may start: the first task of a run always may (unless the settings
        say otherwise); any other only if its path's typical duration fits the budget left."""
        with self._lock:
            if not self._started_any and self.settings.first_task_always_starts:
                return True
        typical = self.history.typical(task.task_path)
        if typical is None:
            return True
        seconds, attempts = typical
        remaining = self.budget.remaining
        if seconds <= remaining + _FIT_TOLERANCE:
            return True
        with self._lock:
            if task.task_path in self._too_long:
                return False
            self._too_long[task.task_path] = seconds
        # A warning: an operator should hear that the budget is too short for this task.
        logger.warning(
            "Tasks of %s are left for a later run: they typically take %.1fs (95th percentile "
            "of the last %d attempts) and %.1fs of the budget is left.",
            task.task_path,
            seconds,
            attempts,
            remaining,
        )
        return False

    def _wait_for_work(self) -> bool:
        """Use an empty queue: do the idle work once, and when polling wait a while; return
        True to look for due tasks again."""
        with self._lock:
            first_idle, self._idled = not self._idled, True
        if first_idle and self.idle is not None:
            self.idle()
        poll = self.settings.poll_seconds
        if poll is None:
            return self._wait_for_siblings()
        waited = 0.0
        while waited < poll and not (self.stop.requested or self._halt.is_set()):
            step = min(_POLL_STEP, poll - waited, self.budget.remaining)
            if step <= 0:
                break
            self.clock.sleep(step)
            waited += step
        return True

    def _wait_for_siblings(self) -> bool:
        """While another thread still claims or runs tasks, wait for its news and return True
        to look again: its claim may have held locks on due rows that ours skipped (MariaDB
        locks every row its claim reads). Return False, leaving the count, once none works."""
        with self._progress:
            self._working -= 1
            if self._working == 0 or self._halt.is_set() or self.stop.requested:
                self._progress.notify_all()
                return False
            # A bounded wait: a task enqueued meanwhile is found too.
            self._progress.wait(timeout=_POLL_STEP)
            self._working += 1
            return True

    def _store(self, executor: Executor, ran: _Ran | None, task: ClaimedTask | None) -> bool:
        """Store the outcome of `ran` and begin `task`'s attempt, in one commit when there are
        both; return whether `task` started."""
        now = self.clock.now()
        started = False
        recorded = False
        if ran is not None and task is not None:
            recorded, started = self.store.finish_then_start(ran.task, ran.outcome, task, now)
        elif ran is not None:
            recorded = self.store.finish(ran.task, ran.outcome, now)
        elif task is not None:
            started = self.store.start(task, now)
        if ran is not None:
            self._settle(executor, ran, recorded)
        return started

    def _run(self, executor: Executor, task: ClaimedTask) -> _Ran:
        with self._lock:
            self._started_any = True
        started = self.clock.monotonic()
        outcome = executor.run(task)
        duration = self.clock.monotonic() - started
        self.history.add(task.task_path, duration)
        with self._progress:
            self.summary.tasks_run += 1
            self._progress.notify_all()
        return _Ran(task=task, outcome=outcome, duration=duration)

    def _settle(self, executor: Executor, ran: _Ran, recorded: bool) -> None:
        if recorded:
            with self._lock:
                if ran.outcome.succeeded:
                    self.summary.succeeded += 1
                else:
                    self.summary.failed += 1
            executor.finished(ran.task, ran.outcome)
        else:
            logger.warning(
                "Task %s was taken over by another run while it ran; its result was not stored.",
                ran.task.id,
            )
        if self.report is not None:
            self.report(
                TaskReport(
                    task=ran.task, outcome=ran.outcome, duration=ran.duration, recorded=recorded
                )
            )


def _paced(claim_size: int, claimed: int, claimed_at: float, clock: Clock) -> int:
    """Size the next claim from how fast the last claimed tasks went: one to begin with."""
    if claimed == 0:
        return 1
    per_task = (clock.monotonic() - claimed_at) / claimed
    if per_task <= 0:
        return claim_size
    return max(1, min(claim_size, int(CLAIM_AHEAD_SECONDS / per_task)))


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
