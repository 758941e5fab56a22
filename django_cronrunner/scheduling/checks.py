"""The system check that reports each invalid schedule declaration of every CronRunner backend."""

from __future__ import annotations

from typing import Any

from django.core import checks

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import task_backends
from django_cronrunner.scheduling.schedules import parse_schedules


def schedule_errors(backend: CronRunnerBackend) -> list[checks.CheckMessage]:
    """Return an error for each schedule of `backend` that cannot be fired."""
    return [
        checks.Error(
            str(error),
            obj=f"TASKS[{backend.alias!r}] schedule {name!r}",
            id="django_cronrunner.E010",
        )
        for name, error in parse_schedules(backend)[1].items()
    ]


def check_schedules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Check the schedules of every CronRunner backend in TASKS."""
    return [
        error
        for backend in task_backends.all()
        if isinstance(backend, CronRunnerBackend)
        for error in schedule_errors(backend)
    ]
