"""Test doubles for the core: an executor scripted by task path, and a store that fails on cue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from cronrunner.clock import FakeClock
from cronrunner.store import ClaimedTask, Outcome, TaskFailure

START = datetime(2026, 6, 1, 12, tzinfo=UTC)


@dataclass
class ScriptedExecutor:
    """Run tasks by their path: `ok`, `fail`, `slow:<seconds>` (advances the fake clock),
    `interrupt` (Ctrl-C inside the task), `exit` (SystemExit, which the executor reports),
    `retry-now` (fails once with its retry due at once, then succeeds)."""

    clock: FakeClock
    ran: list[str] = field(default_factory=list)
    finished_ids: list[str] = field(default_factory=list)

    def run(self, task: ClaimedTask) -> Outcome:
        self.ran.append(task.id)
        kind, _, argument = task.task_path.partition(":")
        if kind == "slow":
            self.clock.advance(float(argument))
            return Outcome(return_value=argument)
        if kind == "fail":
            return Outcome(failure=TaskFailure("builtins.ValueError", "ValueError: boom\n"))
        if kind == "interrupt":
            raise KeyboardInterrupt
        if kind == "retry-now" and self.ran.count(task.id) == 1:
            # The first attempt fails, its retry due at once (a delay of 0).
            return Outcome(
                failure=TaskFailure("builtins.ValueError", "ValueError: once\n"),
                retry_at=self.clock.now(),
            )
        return Outcome(return_value=task.id)

    def finished(self, task: ClaimedTask, outcome: Outcome) -> None:
        self.finished_ids.append(task.id)
