"""manage.py cronrunner_setup: the crontab line and systemd units for this project, and checks."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from cronrunner.errors import CronRunnerError
from django_cronrunner.doctor import (
    Finding,
    Invocation,
    Level,
    check_backend,
    check_database,
    check_lock,
    check_migrations,
    check_sqlite,
    check_time_zones,
    dry_run,
    find_manage_py,
)
from django_cronrunner.management.commands.run_due_tasks import backend_alias, positive_float
from django_cronrunner.runner import get_backend


class Command(BaseCommand):
    help = (
        "Print the crontab line and systemd units that run this project's tasks, check the "
        "install, and show what the next run would do. Exits 1 if a check found an error."
    )
    # This command reports a database that is down as one of its checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--backend", type=backend_alias, default="default")
        parser.add_argument(
            "--max-seconds", type=positive_float, default=50.0, help="Budget in the lines shown."
        )
        parser.add_argument("--manage-py", help="Path of manage.py (default: found for you).")
        parser.add_argument(
            "--log", help="Log file for the crontab line (default: logs/ next to it)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backend = get_backend(options["backend"])
        except CronRunnerError as e:
            raise CommandError(str(e)) from e
        manage_py = find_manage_py(options["manage_py"])
        invocation = Invocation(
            python=sys.executable,
            manage_py=manage_py,
            settings_module=_settings_module(),
            max_seconds=options["max_seconds"],
            log=Path(options["log"]).resolve()
            if options["log"]
            else manage_py.parent / "logs" / "cronrunner.log",
        )
        self.stdout.write("Crontab line (crontab -e as the site's user):\n")
        self.stdout.write(f"  {invocation.crontab_line()}\n")
        self.stdout.write(
            "\nOr systemd units (in /etc/systemd/system/, then "
            "`systemctl enable --now django-cronrunner.timer`):"
        )
        for name, text in invocation.systemd_units(getpass.getuser()).items():
            self.stdout.write(f"\n# {name}\n{text}")
        findings: list[Finding] = [*check_backend(backend), check_lock(backend.config)]
        database = check_database(backend)
        findings.append(database)
        if database.level is Level.OK:
            findings.append(check_migrations(backend))
            findings.extend(check_sqlite(backend))
        findings.append(check_time_zones())
        self.stdout.write("Checks:")
        for finding in findings:
            self.stdout.write(f"  {finding.level:<7} {finding.message}")
            if finding.hint and finding.level is not Level.OK:
                self.stdout.write(f"          {finding.hint}")
        failed = any(finding.level is Level.ERROR for finding in findings)
        if not failed:
            self.stdout.write("\nDry run (nothing is claimed, run or written):")
            for line in dry_run(backend, timezone.now()):
                self.stdout.write(f"  {line}")
        if failed:
            self.stderr.write("cronrunner_setup: fix the errors above, then run it again.")
            sys.exit(1)


def _settings_module() -> str | None:
    # What manage.py put in the environment is what cron must be given too.
    return os.environ.get("DJANGO_SETTINGS_MODULE") or None
