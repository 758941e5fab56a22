"""The Django app configuration."""

from typing import Any

from django.apps import AppConfig
from django.core import checks

from django_cronrunner.monitoring_options import check_monitoring
from django_cronrunner.trigger_options import check_trigger


class CronRunnerConfig(AppConfig):
    name = "django_cronrunner"
    verbose_name = "Cron runner"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registered here, not by the backend's own check(), so that the backend does not
        # import the scheduling built on it.
        checks.register(check_schedules, "tasks")
        checks.register(check_trigger, "tasks")
        checks.register(check_monitoring, "tasks")


# Scheduling is imported only when checks run: a run every minute skips the checks, and need not
# pay for importing it at start-up.
def check_schedules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report each invalid schedule of every CronRunner backend."""
    from django_cronrunner.scheduling.checks import check_schedules as check

    return check(app_configs, **kwargs)
