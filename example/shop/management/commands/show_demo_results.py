"""Print every stored task's result, read back through the django.tasks API."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.tasks import default_task_backend

from django_cronrunner.models import TaskRecord


class Command(BaseCommand):
    help = "Show each task result's status, return value or error."

    def handle(self, *args: Any, **options: Any) -> None:
        ids = TaskRecord.objects.order_by("enqueued_at").values_list("pk", flat=True)
        for task_id in ids:
            result = default_task_backend.get_result(str(task_id))
            line = f"{result.task.name:<24} {result.status:<10}"
            if result.status == "SUCCESSFUL":
                line += f" -> {result.return_value!r}"
            elif result.errors:
                last_line = result.errors[-1].traceback.strip().splitlines()[-1]
                line += f" -> {last_line}"
            elif result.task.run_after:
                line += f" (waits until {result.task.run_after:%Y-%m-%d %H:%M})"
            self.stdout.write(line)
