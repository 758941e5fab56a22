"""A progress line for run_due_tasks in a terminal: rewritten in place as tasks finish."""

from __future__ import annotations

import threading
import time

from django.core.management.base import OutputWrapper

from cronrunner.drain import TaskReport

CLEAR_LINE = "\r\033[K"


class LiveProgress:
    """Show tasks run, failures and budget used on one line that each finished task rewrites."""

    def __init__(self, out: OutputWrapper, max_seconds: float) -> None:
        self.out = out
        self.max_seconds = max_seconds
        self.started = time.monotonic()
        self.run = 0
        self.failed = 0
        self.shown = False
        #: Held while the line is drawn, and while a log record or a task's output is written
        #: (see run.console).
        self.lock = threading.RLock()

    def update(self, report: TaskReport) -> None:
        """Count one finished task and redraw the line."""
        self.run += 1
        self.failed += report.outcome.failure is not None
        elapsed = time.monotonic() - self.started
        line = (
            f"{self.run} run, {self.failed} failed, {elapsed:.1f}s of {self.max_seconds:g}s; "
            f"last: {report.task.task_path}"
        )
        with self.lock:
            self.out.write(CLEAR_LINE + line, ending="")
            self.out.flush()
            self.shown = True

    def hide(self) -> None:
        """Remove the line until the next update; the caller holds `lock`."""
        if self.shown:
            self.out.write(CLEAR_LINE, ending="")
            self.out.flush()
            self.shown = False

    def clear(self) -> None:
        """Remove the line so that the summary that follows starts clean."""
        with self.lock:
            self.hide()
