"""What becomes of a task whose runner died: a pure decision shared by every store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cronrunner.errors import RunnerDied
from cronrunner.store import TaskFailure

#: A runner's death is not the task's fault, so a task it held runs again, but only until it
#: has been started this many times: a task that kills its runner every time must not loop.
CRASH_ATTEMPTS = 3

RUNNER_DIED_PATH = f"{RunnerDied.__module__}.{RunnerDied.__qualname__}"


@dataclass(frozen=True, slots=True)
class Recovery:
    """Whether to queue an orphaned task again, and the failure to record for the lost attempt."""

    requeue: bool
    failure: TaskFailure | None

    def due_again(self, due_at: datetime, now: datetime) -> datetime:
        """Return when a requeued task is due: after a lost attempt, behind what is due now."""
        # Otherwise a task that kills its runner would be first in every run until it fails.
        return due_at if self.failure is None else max(due_at, now)


def recover_orphan(worker_ids: list[str], claimed_by: str, max_attempts: int = 1) -> Recovery:
    """Decide the fate of a task left RUNNING by `claimed_by`, given its attempts so far."""
    started = bool(worker_ids) and worker_ids[-1] == claimed_by
    if not started:
        # Claimed but never started: hand it back untouched, it used no attempt.
        return Recovery(requeue=True, failure=None)
    attempts = len(worker_ids)
    failure = TaskFailure(
        exception_class_path=RUNNER_DIED_PATH,
        traceback=(
            f"{RunnerDied.__name__}: the run {claimed_by} died during attempt {attempts} "
            "before it stored the outcome (killed, out of memory, or the host restarted).\n"
        ),
    )
    return Recovery(requeue=attempts < max(max_attempts, CRASH_ATTEMPTS), failure=failure)
