"""manage.py cronrunner_setup: the crontab line and systemd units for this project, and checks."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from django_cronrunner.backend import get_backend
from django_cronrunner.management.commands.run_due_tasks import backend_alias, positive_float
from django_cronrunner.operations.doctor import (
    Finding,
    Level,
    check_backend,
    check_clock,
    check_database,
    check_lock,
    check_log,
    check_manage_py,
    check_migrations,
    check_sqlite,
    check_time_zones,
    dry_run,
)
from django_cronrunner.operations.failures import OperationsCommand
from django_cronrunner.operations.setup_lines import (
    Invocation,
    default_log,
    find_manage_py,
    interpreter_path,
    trigger_lines,
)
from django_cronrunner.storage.database_clock import database_now


class Command(OperationsCommand):
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
        parser.add_argument(
            "--manage-py", type=existing_file, help="Path of manage.py (default: found for you)."
        )
        parser.add_argument(
            "--log",
            help="Log file for the crontab line (default: logs/cronrunner.log next to manage.py).",
        )
        parser.add_argument(
            "--site-url",
            help="The site's address, for the HTTP trigger's URL (default: from ALLOWED_HOSTS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        backend = get_backend(options["backend"])
        manage_py = find_manage_py(options["manage_py"])
        invocation = Invocation(
            python=interpreter_path(sys.executable),
            manage_py=manage_py,
            settings_module=_settings_module(),
            max_seconds=options["max_seconds"],
            log=Path(options["log"]).resolve() if options["log"] else default_log(manage_py),
        )
        self.stdout.write("Crontab line (crontab -e as the site's user):\n")
        self.stdout.write(f"  {invocation.crontab_line()}\n")
        self.stdout.write(
            "\nOr systemd units (in /etc/systemd/system/, then "
            "`systemctl enable --now django-cronrunner.timer`):"
        )
        for name, text in invocation.systemd_units(getpass.getuser()).items():
            self.stdout.write(f"\n# {name}\n{text}")
        trigger = trigger_lines(options["site_url"])
        if trigger:
            self.stdout.write("No cron? Give a scheduler the HTTP trigger (the secret masked):")
            self.stdout.write("".join(f"  {line}\n" for line in trigger))
        findings: list[Finding] = [
            check_manage_py(manage_py),
            *check_backend(backend),
            check_lock(backend.config),
            check_log(invocation.log),
        ]
        database = check_database(backend)
        findings.append(database)
        if database.level is Level.OK:
            findings.append(check_migrations(backend))
            findings.extend(check_sqlite(backend))
            findings.append(check_clock(backend))
        findings.append(check_time_zones())
        self.stdout.write("\nChecks:")
        for finding in findings:
            self.stdout.write(f"  {finding.level:<7} {finding.message}")
            if finding.hint and finding.level is not Level.OK:
                self.stdout.write(f"          {finding.hint}")
        failed = any(finding.level is Level.ERROR for finding in findings)
        if not failed:
            self.stdout.write("\nDry run (nothing is claimed, run or written):")
            for line in dry_run(backend, database_now(backend.config.database)):
                self.stdout.write(f"  {line}")
        if failed:
            self.stderr.write("cronrunner_setup: fix the errors above, then run it again.")
            sys.exit(1)


def existing_file(value: str) -> str:
    """Accept the path of a file that exists (argparse type)."""
    if not Path(value).is_file():
        raise argparse.ArgumentTypeError(f"{value!r} is not a file")
    return value


def _settings_module() -> str | None:
    # What manage.py put in the environment is what cron must be given too.
    return os.environ.get("DJANGO_SETTINGS_MODULE") or None
