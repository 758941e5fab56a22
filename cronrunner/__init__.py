"""Run due background tasks from cron: budget, lock, drain loop, schedule maths; no Django."""

from cronrunner.errors import CronRunnerError

__all__ = ["CronRunnerError"]
