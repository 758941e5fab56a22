"""manage.py prune_task_results: delete finished results and batch log rows past their retention."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import Error as DatabaseError

from cronrunner.errors import CronRunnerError
from django_cronrunner.backend import get_backend
from django_cronrunner.management.commands.run_due_tasks import backend_alias
from django_cronrunner.storage.database_clock import database_now
from django_cronrunner.storage.pruning import prune


class Command(BaseCommand):
    help = (
        "Delete successful and failed task results and batch log rows older than the "
        "backend's OPTIONS['retention']."
    )
    # System checks query the database (JSONField support): a database that is down must
    # give this command's one-line error, not a traceback from the checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--backend", type=backend_alias, default="default", help="TASKS alias to prune."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backend = get_backend(options["backend"])
            result = prune(
                using=backend.config.database,
                backend_name=backend.alias,
                retention=backend.config.retention,
                now=database_now(backend.config.database),
                dry_run=options["dry_run"],
            )
        except CronRunnerError as e:
            raise CommandError(str(e)) from e
        except DatabaseError as e:
            raise CommandError(f"The database cannot be used: {e}") from e
        verb = "Would delete" if options["dry_run"] else "Deleted"
        self.stdout.write(
            f"{verb} {result.successful} successful and {result.failed} failed task results "
            f"and {result.batches} batch log rows."
        )
