"""The Django app configuration."""

from django.apps import AppConfig


class CronRunnerConfig(AppConfig):
    name = "django_cronrunner"
    verbose_name = "Cron runner"
    default_auto_field = "django.db.models.BigAutoField"
