"""manage.py cronrunner_status: show each schedule and whether it is firing on time."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from cronrunner.errors import CronRunnerError
from django_cronrunner.management.commands.run_due_tasks import backend_alias
from django_cronrunner.runner import get_backend
from django_cronrunner.status import ScheduleStatus, local_and_utc, schedule_statuses


class Command(BaseCommand):
    help = "Show declared schedules: last slot fired, the next slots, and any that are overdue."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--backend", type=backend_alias, default="default", help="TASKS alias to show."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backend = get_backend(options["backend"])
        except CronRunnerError as e:
            raise CommandError(str(e)) from e
        statuses = schedule_statuses(backend, timezone.now())
        if not statuses:
            self.stdout.write("No schedules are declared.")
        for status in statuses:
            self.stdout.write("\n".join(describe_schedule(status)))


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
