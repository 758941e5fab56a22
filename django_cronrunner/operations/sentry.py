"""Sentry Crons check-ins: the runner's monitor per batch, and one per schedule's task.

sentry_sdk is imported here only, and this module only when OPTIONS['monitoring']['sentry']
is set: sites without the `sentry` extra never import it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import sentry_sdk
from sentry_sdk.crons import capture_checkin

from cronrunner.drain import TaskReport
from cronrunner.store import BatchSummary
from django_cronrunner.monitoring_options import SentryCrons, monitor_slug
from django_cronrunner.operations.checkins import batch_failed

logger = logging.getLogger("django_cronrunner")


def crontab_config(
    cron: str, timezone: str, margin: int, max_runtime_seconds: float | None = None
) -> dict[str, Any]:
    """Return the monitor_config that creates or updates (upserts) a crontab monitor."""
    config: dict[str, Any] = {
        "schedule": {"type": "crontab", "value": cron},
        "timezone": timezone,
        "checkin_margin": margin,
    }
    if max_runtime_seconds is not None:
        config["max_runtime"] = max(1, math.ceil(max_runtime_seconds / 60))
    return config


class SentryHooks:
    """Check the runner in at each batch's start and end, and each schedule's task as it ends."""

    def __init__(self, settings: SentryCrons, schedules: Mapping[str, tuple[str, str]]) -> None:
        """`schedules` maps each schedule name to its (cron expression, time zone)."""
        self.settings = settings
        self.schedules = schedules if settings.schedules else {}
        self.check_in_id: str | None = None
        if settings.dsn and not sentry_sdk.get_client().is_active():
            # For the check-ins alone: the default integrations would report every error and
            # logged error of the process, which a project that wants it sets up itself.
            sentry_sdk.init(dsn=settings.dsn, default_integrations=False)

    def batch_started(self, summary: BatchSummary) -> None:
        self.check_in_id = self._capture(
            monitor_slug=self.settings.monitor,
            status="in_progress",
            monitor_config=self._runner_config(summary.max_seconds),
        )

    def task_finished(self, report: TaskReport) -> None:
        name = getattr(report.task.record, "schedule_name", None)
        if name is None or name not in self.schedules or not report.recorded:
            return
        cron, timezone = self.schedules[name]
        self._capture(
            monitor_slug=monitor_slug(name),
            status="ok" if report.outcome.succeeded else "error",
            duration=report.duration,
            monitor_config=crontab_config(cron, timezone, self.settings.margin_minutes),
        )

    def batch_finished(self, summary: BatchSummary) -> None:
        self._capture(
            monitor_slug=self.settings.monitor,
            check_in_id=self.check_in_id,
            status="error" if batch_failed(summary) else "ok",
            duration=summary.duration,
        )
        self._flush()

    def run_failed(self, error: str) -> None:
        # A check-in carries no message: the run's own error line says what went wrong.
        self._capture(
            monitor_slug=self.settings.monitor,
            status="error",
            monitor_config=self._runner_config(None),
        )
        self._flush()

    def _runner_config(self, max_seconds: float | None) -> dict[str, Any]:
        # A run lasts about its budget plus its longest task; give it a minute's slack.
        return crontab_config(
            self.settings.cron,
            "UTC",
            self.settings.margin_minutes,
            None if max_seconds is None else max_seconds + 60,
        )

    def _flush(self) -> None:
        # The process exits right after: send now, but never wait past the timeout.
        try:
            sentry_sdk.flush(timeout=self.settings.timeout)
        except Exception as e:
            logger.warning("Sentry check-ins could not be sent (%s); the batch goes on.", e)

    def _capture(self, **checkin: Any) -> str | None:
        try:
            check_in_id: str | None = capture_checkin(**checkin)
        except Exception as e:
            logger.warning("Sentry check-in failed (%s); the batch goes on.", e)
            return None
        return check_in_id
