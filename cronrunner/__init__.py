"""Run due background tasks from cron: budget, lock, drain loop and schedule maths, free of Django."""

from cronrunner.errors import CronRunnerError

__all__ = ["CronRunnerError"]
