"""manage.py cronrunner_status: backlog, last batch and schedules; --check for monitors."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from django_cronrunner.backend import get_backend
from django_cronrunner.management.commands.run_due_tasks import (
    backend_alias,
    positive_int,
    positive_number,
)
from django_cronrunner.operations.capacity import capacity_report, describe_capacity
from django_cronrunner.operations.doctor import write_problem
from django_cronrunner.operations.failures import OperationsCommand
from django_cronrunner.operations.health import (
    BACKLOG_HISTORY,
    Health,
    Limits,
    health,
    json_ready,
    problems,
)
from django_cronrunner.operations.preview import describe_previews, schedule_previews
from django_cronrunner.operations.status import (
    ScheduleStatus,
    local_and_utc,
    schedule_problems,
    schedule_statuses,
)
from django_cronrunner.storage.database_clock import database_now


def minutes(value: str) -> timedelta:
    """Parse a positive number of minutes."""
    return timedelta(minutes=positive_number("minutes")(value))


def days(value: str) -> int:
    """Parse a number of days from 1 to 366."""
    number = positive_int(value)
    if number > 366:
        raise argparse.ArgumentTypeError(f"{value!r} must be at most 366")
    return number


def backlog_batches(value: str) -> int:
    """Parse 0 (off) or a number of batches from 2 to BACKLOG_HISTORY."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number != 0 and not 2 <= number <= BACKLOG_HISTORY:
        raise argparse.ArgumentTypeError(f"{value!r} must be 0 or from 2 to {BACKLOG_HISTORY}")
    return number


class Command(OperationsCommand):
    help = (
        "Show the backlog per queue, the last batch and each schedule's next slots. "
        "With --check, exit 1 with one line per problem, for monitors."
    )
    # System checks query the database (JSONField support): a database that is down must
    # give this command's one-line error, not a traceback from the checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--backend", type=backend_alias, default="default", help="TASKS alias to show."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON document.")
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit 1, naming each problem on its own line, if a limit below is passed.",
        )
        parser.add_argument(
            "--max-silence",
            type=minutes,
            default=timedelta(minutes=5),
            metavar="MINUTES",
            help="Problem: no batch finished within this many minutes (default 5).",
        )
        parser.add_argument(
            "--max-wait",
            type=minutes,
            default=timedelta(minutes=15),
            metavar="MINUTES",
            help="Problem: a due task has waited longer than this (default 15).",
        )
        parser.add_argument(
            "--backlog-batches",
            type=backlog_batches,
            default=3,
            metavar="K",
            help="Problem: the due tasks left grew across the last K batches (default 3; 0: off).",
        )
        report = parser.add_mutually_exclusive_group()
        report.add_argument(
            "--capacity",
            action="store_true",
            help="Show arrival and drain rates, budget use and recommendations instead.",
        )
        parser.add_argument(
            "--window",
            type=positive_number("hours"),
            default=1.0,
            metavar="HOURS",
            help="History --capacity reads (default the last hour).",
        )
        report.add_argument(
            "--schedules",
            action="store_true",
            help="Preview each schedule's fire times and the coming year's DST changes instead.",
        )
        parser.add_argument(
            "--days",
            type=days,
            default=7,
            metavar="N",
            help="Fire times --schedules lists: the next N days (default 7, at most 366).",
        )
        parser.add_argument(
            "--max-failures",
            type=positive_int,
            default=None,
            metavar="N",
            help="Problem: more than N tasks failed in the last hour (default: not checked).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["capacity"] or options["schedules"]:
            self._monitoring_report(options)
            return
        backend = get_backend(options["backend"])
        now = database_now(backend.config.database)
        report = health(backend, now)
        schedules = schedule_statuses(backend, now)
        limits = Limits(
            max_silence=options["max_silence"],
            max_wait=options["max_wait"],
            max_failures=options["max_failures"],
            backlog_batches=options["backlog_batches"] or None,
        )
        found = problems(report, limits) + schedule_problems(schedules)
        if options["check"] and (unwritable := write_problem(backend.config.database)):
            # Every run fails until it can write; the silence would show only minutes later.
            found.insert(0, unwritable)
        if options["json"]:
            document = report.as_json()
            document["schedules"] = [json_ready(asdict(status)) for status in schedules]
            document["problems"] = found
            self.stdout.write(json.dumps(document, indent=2))
        else:
            self.stdout.write("\n".join(describe_health(report)))
            if not schedules:
                self.stdout.write("No schedules are declared.")
            for status in schedules:
                self.stdout.write("\n".join(describe_schedule(status)))
        if options["check"]:
            if found:
                for problem in found:
                    self.stderr.write(f"PROBLEM: {problem}")
                sys.exit(1)
            if not options["json"]:
                self.stdout.write("OK: no problems found.")

    def _monitoring_report(self, options: dict[str, Any]) -> None:
        """Print the --capacity or --schedules report; exit 1 if a schedule is invalid."""
        backend = get_backend(options["backend"])
        now = database_now(backend.config.database)
        if options["capacity"]:
            report = capacity_report(backend, now, timedelta(hours=options["window"]))
            document: Any = report.as_json()
            lines = describe_capacity(report)
            invalid = False
        else:
            previews = schedule_previews(backend, now, options["days"])
            document = [preview.as_json() for preview in previews]
            lines = describe_previews(previews, options["days"])
            invalid = any(preview.problem for preview in previews)
        self.stdout.write(json.dumps(document, indent=2) if options["json"] else "\n".join(lines))
        if invalid:
            sys.exit(1)


def describe_health(report: Health) -> list[str]:
    """Lay out the backlog and the last batch."""
    lines = [f"Backend {report.backend!r}:"]
    if not report.queues:
        lines.append("  backlog: empty")
    for queue in report.queues:
        lines.append(
            f"  queue {queue.queue_name}: {queue.due} due, {queue.deferred} deferred, "
            f"{queue.running} running"
        )
    wait = report.oldest_due_wait
    if wait is not None:
        lines.append(f"  oldest due task has waited {wait.total_seconds():.0f}s")
    lines.append(f"  failures in the last hour: {report.failures_in_window}")
    if any(report.recent_backlog):
        recent = " -> ".join(map(str, report.recent_backlog[-5:]))
        lines.append(f"  due tasks left by the last batches: {recent}")
    batch = report.last_batch
    if batch is None:
        lines.append("  last batch: none yet")
    else:
        ago = (report.now - batch.finished_at).total_seconds()
        lines.append(
            f"  last batch: {batch.finished_at:%Y-%m-%d %H:%M:%S %Z} ({ago:.0f}s ago) on "
            f"{batch.host}: {batch.tasks_run} run, {batch.failed} failed, "
            f"{batch.duration:.1f}s of {batch.max_seconds:g}s; stopped: {batch.stop_reason}"
            + (f" ({batch.error})" if batch.error else "")
        )
    return lines


def describe_schedule(status: ScheduleStatus) -> list[str]:
    """Lay one schedule out over a few lines."""
    if status.error is not None:
        return [f"{status.name}: INVALID: {status.error}"]
    state = "paused" if status.paused else "enabled" if status.enabled else "disabled"
    lines = [
        f"{status.name}: {status.expression!r} in {status.timezone}, "
        f"catch-up {status.catch_up}, {state}"
    ]
    last = local_and_utc(status.last_slot, status.timezone) if status.last_slot else "never"
    lines.append(f"  last slot fired: {last}")
    lines.extend(f"  next: {local_and_utc(slot, status.timezone)}" for slot in status.next_slots)
    if status.overdue_slot is not None:
        lines.append(
            f"  OVERDUE: the slot {local_and_utc(status.overdue_slot, status.timezone)} "
            "has not been fired; is run_due_tasks running from cron?"
        )
    return lines
