"""manage.py run_due_tasks: run the due tasks once, within a time budget, then exit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from cronrunner.drain import TaskReport, describe_task
from cronrunner.runner import describe_batch
from cronrunner.shutdown import StopNow
from cronrunner.store import StopReason
from django_cronrunner.backend import get_backend
from django_cronrunner.operations.failures import OperationsCommand
from django_cronrunner.operations.progress import LiveProgress
from django_cronrunner.run.console import run_console
from django_cronrunner.run.runner import run_due_tasks


def positive_number(unit: str) -> Callable[[str], float]:
    """Return an argparse type that parses a finite number of `unit` greater than zero."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number of {unit}") from None
        if not number > 0 or number == float("inf"):
            raise argparse.ArgumentTypeError(f"{value!r} must be a positive number of {unit}")
        return number

    return parse


#: A number of seconds greater than zero (argparse type).
positive_float = positive_number("seconds")


def positive_int(value: str) -> int:
    """Parse a whole number greater than zero."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return number


def queue_names(value: str) -> list[str]:
    """Parse a comma-separated list of queue names; `*` means every queue."""
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{value!r} contains an empty queue name")
    return names


def backend_alias(value: str) -> str:
    """Accept only an alias configured in settings.TASKS."""
    aliases = sorted(getattr(settings, "TASKS", {}) or {"default": None})
    if value not in aliases:
        raise argparse.ArgumentTypeError(f"{value!r} is not in TASKS (choose from {aliases})")
    return value


def check_queues(alias: str, queues: frozenset[str]) -> str | None:
    """Name a queue the backend never accepts tasks for (a typo would run nothing, silently),
    or return None."""
    allowed = get_backend(alias).queues
    # An empty QUEUES lets tasks use any queue name.
    unknown = sorted(queues - allowed) if allowed else []
    if unknown:
        return (
            f"--queue {unknown[0]!r} is not in TASKS[{alias!r}]['QUEUES'] "
            f"(choose from {sorted(allowed)}, or *)"
        )
    return None


class Command(OperationsCommand):
    help = "Run due tasks by priority until none is left or the time budget is spent, then exit."
    # System checks query the database (JSONField support): a database that is down must
    # give our one-line error, and a run every minute need not re-check the whole project.
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Kept to refuse, as argparse refuses any invalid argument (exit 2), a --queue that
        # only the chosen backend can judge.
        self.parser = super().create_parser(prog_name, subcommand, **kwargs)
        return self.parser

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--max-seconds",
            type=positive_float,
            default=50.0,
            help="Stop starting tasks after this many seconds (default 50, for a cron line "
            "that starts every minute).",
        )
        parser.add_argument(
            "--queue",
            dest="queues",
            type=queue_names,
            action="append",
            help="Only run tasks from these queues (repeat or comma-separate; * for all). "
            "Default: every queue.",
        )
        parser.add_argument(
            "--backend", type=backend_alias, default="default", help="TASKS alias to run."
        )
        parser.add_argument(
            "--lock-file",
            type=Path,
            help="Lock file; runs sharing one never overlap (default: derived from settings, "
            "in a directory only this user can write).",
        )
        parser.add_argument(
            "--max-tasks", type=positive_int, help="Stop after running this many tasks."
        )
        parser.add_argument(
            "--concurrency",
            type=positive_int,
            default=1,
            help="Run this many tasks at once, each on its own thread and database connection "
            "(for tasks that wait on I/O; default 1).",
        )
        parser.add_argument(
            "--poll",
            dest="poll_seconds",
            type=positive_float,
            metavar="SECONDS",
            help="When no task is due, look again every SECONDS until the budget is spent, so "
            "that a task enqueued mid-minute starts within SECONDS (default: exit at once).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options["verbosity"]
        names = {name for group in options["queues"] or [] for name in group}
        queues = None if not names or "*" in names else frozenset(names)

        # In a terminal, one line that updates as tasks finish; under cron, only log lines.
        progress = (
            LiveProgress(self.stdout, options["max_seconds"])
            if (verbosity == 1 and self.stdout.isatty())
            else None
        )

        def report(task_report: TaskReport) -> None:
            if verbosity >= 2:
                self._log(describe_task(task_report))
            if progress is not None:
                progress.update(task_report)

        if queues is not None and (refused := check_queues(options["backend"], queues)):
            self.parser.error(refused)
        try:
            with run_console(verbosity, progress):
                summary = run_due_tasks(
                    backend_alias=options["backend"],
                    max_seconds=options["max_seconds"],
                    max_tasks=options["max_tasks"],
                    queues=queues,
                    concurrency=options["concurrency"],
                    poll_seconds=options["poll_seconds"],
                    lock_file=options["lock_file"],
                    report=report,
                )
        except StopNow:
            self.stderr.write(
                "run_due_tasks: stopped at once by a second signal; the next run recovers "
                "the task that was in progress."
            )
            sys.exit(130)
        finally:
            if progress is not None:
                progress.clear()
        if verbosity >= 1 or summary.stop_reason is StopReason.LOCK_HELD:
            self._log(describe_batch(summary))

    def _log(self, line: str) -> None:
        stamp = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
        self.stdout.write(f"{stamp} run_due_tasks: {line}")
