"""What a run writes to its console (stdout, stderr: the cron log) through Python's logging.

Django's `django.tasks` logger adds lines for every task (started, finished, and a traceback
for each failure); a run already says the same in its summary line (and, at -v 2, a line per
task), so on the console those records are shown only at -v 3, unless the project's LOGGING
names that logger itself. Other handlers (files, mail_admins, error trackers) still get them.
Every record that does reach the console, and everything a task prints, is written on a line
of its own, never over the progress line.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TextIO, cast

from django.conf import settings

from django_cronrunner.compat import TASKS_LOGGER

#: Tells the child process of timed tasks what the run shows (see run_console).
VERBOSITY_VARIABLE = "CRONRUNNER_VERBOSITY"


class Line(Protocol):
    """A line redrawn in place (LiveProgress) that a log record must not be written over."""

    #: Reentrant: logging's last resort writes to sys.stderr, which a TaskOutput may be.
    lock: threading.RLock

    def hide(self) -> None:
        """Remove the line; called with `lock` held."""


def shows_task_records(verbosity: int) -> bool:
    """Say whether django.tasks' records belong on the console at this verbosity."""
    configured = TASKS_LOGGER in (getattr(settings, "LOGGING", None) or {}).get("loggers", {})
    return configured or verbosity >= 3


class ConsoleHandler(logging.Handler):
    """Stand in for a handler writing to stdout or stderr for the length of a run."""

    def __init__(self, inner: logging.Handler, show_tasks: bool, line: Line | None) -> None:
        super().__init__(inner.level)
        self.inner = inner
        self.show_tasks = show_tasks
        self.line = line

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.show_tasks and _from_tasks_logger(record):
            return False
        if self.line is None:
            return bool(self.inner.handle(record))
        # Held while the record is written, so that the line is not redrawn in between.
        with self.line.lock:
            self.line.hide()
            return bool(self.inner.handle(record))

    def emit(self, record: logging.LogRecord) -> None:
        self.inner.emit(record)


class TaskOutput:
    """Stand in for sys.stdout or sys.stderr while a run draws its progress line: what a task
    prints starts where the line was, not after it."""

    def __init__(self, inner: TextIO, line: Line) -> None:
        self.inner = inner
        self.line = line

    def write(self, text: str) -> int:
        with self.line.lock:
            self.line.hide()
            return self.inner.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for text in lines:
            self.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _from_tasks_logger(record: logging.LogRecord) -> bool:
    return record.name == TASKS_LOGGER or record.name.startswith(TASKS_LOGGER + ".")


def _writes_to_console(handler: logging.Handler) -> bool:
    consoles = {id(stream) for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)}
    return isinstance(handler, logging.StreamHandler) and id(handler.stream) in consoles


def _console_handlers() -> Iterator[tuple[logging.Logger, int, logging.Handler]]:
    loggers = [logging.getLogger()] + [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for index, handler in enumerate(logger.handlers):
            if _writes_to_console(handler):
                yield logger, index, handler


@contextmanager
def run_console(verbosity: int, line: Line | None = None) -> Iterator[None]:
    """While a run lasts, route every console handler (and logging's last resort, which
    prints the warnings of a project without LOGGING) through a ConsoleHandler."""
    show_tasks = shows_task_records(verbosity)
    replaced = list(_console_handlers())
    wrappers: dict[int, ConsoleHandler] = {}
    for logger, index, handler in replaced:
        wrapper = wrappers.setdefault(id(handler), ConsoleHandler(handler, show_tasks, line))
        logger.handlers[index] = wrapper
    last_resort = logging.lastResort
    if last_resort is not None:
        logging.lastResort = ConsoleHandler(last_resort, show_tasks, line)
    previous = os.environ.get(VERBOSITY_VARIABLE)
    os.environ[VERBOSITY_VARIABLE] = str(verbosity)
    streams = sys.stdout, sys.stderr
    if line is not None:
        sys.stdout, sys.stderr = (cast(TextIO, TaskOutput(stream, line)) for stream in streams)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams
        for logger, index, handler in replaced:
            if index < len(logger.handlers) and logger.handlers[index] is wrappers[id(handler)]:
                logger.handlers[index] = handler
        logging.lastResort = last_resort
        if previous is None:
            os.environ.pop(VERBOSITY_VARIABLE, None)
        else:
            os.environ[VERBOSITY_VARIABLE] = previous


def quiet_child_console() -> None:
    """In the child process of timed tasks, hide django.tasks' records from the console as
    the run that started it does."""
    verbosity = int(os.environ.get(VERBOSITY_VARIABLE, "1"))
    show_tasks = shows_task_records(verbosity)
    for logger, index, handler in list(_console_handlers()):
        logger.handlers[index] = ConsoleHandler(handler, show_tasks, None)
