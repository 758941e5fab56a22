"""The one place a batch's monitoring is assembled from OPTIONS['monitoring']."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

from cronrunner.drain import TaskReport
from cronrunner.runner import BatchHooks
from cronrunner.store import BatchSummary
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.operations.failures import explain, one_line

logger = logging.getLogger("django_cronrunner")

T = TypeVar("T")


class MonitoringHook(BatchHooks, Protocol):
    """A batch hook that can also report a run that failed before its batch started."""

    def run_failed(self, error: str) -> None:
        """Called with the run's one-line error when it failed before taking the lock."""


class AllHooks:
    """Call several hooks in turn; one that raises is logged and never stops the batch."""

    def __init__(self, hooks: Sequence[MonitoringHook], database: str) -> None:
        self.hooks = list(hooks)
        self.database = database
        self.started = False

    def batch_started(self, summary: BatchSummary) -> None:
        self.started = True
        for hook in self.hooks:
            self._guarded(hook.batch_started, summary)

    def task_finished(self, report: TaskReport) -> None:
        for hook in self.hooks:
            self._guarded(hook.task_finished, report)

    def batch_finished(self, summary: BatchSummary) -> None:
        for hook in self.hooks:
            self._guarded(hook.batch_finished, summary)

    def run_failed(self, error: Exception) -> None:
        """Report an error raised before the batch started, which no batch hook saw."""
        if self.started:
            return  # the batch's own end reported it
        line = explain(error, self.database) or f"{type(error).__name__}: {one_line(str(error))}"
        for hook in self.hooks:
            self._guarded(hook.run_failed, line)

    @staticmethod
    def _guarded(call: Callable[[T], None], argument: T) -> None:
        try:
            call(argument)
        except Exception as e:
            # One line, as a cron log wants: the database being down already says the rest.
            logger.warning(
                "A monitoring hook failed (%s: %s); the batch goes on.", type(e).__name__, e
            )


@contextmanager
def failure_before_batch(hooks: AllHooks | None) -> Iterator[None]:
    """Report an exception that escapes the block before the batch started (the database is
    down, the lock file cannot be opened) to the hooks, and let it go on."""
    try:
        yield
    except Exception as e:
        if hooks is not None:
            hooks.run_failed(e)
        raise


class TextfileHook:
    """Rewrite the node_exporter textfile from the database once the batch log row is stored."""

    def __init__(self, backend: CronRunnerBackend, path: Path) -> None:
        self.backend = backend
        self.path = path

    def batch_started(self, summary: BatchSummary) -> None:
        pass

    def task_finished(self, report: TaskReport) -> None:
        pass

    def batch_finished(self, summary: BatchSummary) -> None:
        from django_cronrunner.operations.metrics import write_textfile

        assert summary.finished_at is not None
        write_textfile(self.backend, self.path, summary.finished_at)

    def run_failed(self, error: str) -> None:
        pass  # the metrics are read from the database, which may be what failed


def monitoring_hooks(backend: CronRunnerBackend) -> AllHooks | None:
    """Return the hooks OPTIONS['monitoring'] asks for, or None when it asks for none; one
    that cannot be set up is left out with a warning, and the tasks run all the same."""
    settings = backend.config.monitoring
    if not settings.enabled:
        return None
    hooks: list[MonitoringHook] = []
    if settings.checkins is not None:
        from django_cronrunner.operations.checkins import PingHooks

        hooks.append(PingHooks(settings.checkins))
    if settings.sentry is not None and _installed(backend, "sentry", "sentry_sdk", "sentry"):
        try:
            hooks.append(_sentry_hooks(backend))
        except Exception as e:
            logger.warning(
                "Sentry check-ins could not be set up (%s: %s); the batch runs without them.",
                type(e).__name__,
                e,
            )
    if settings.textfile is not None and _installed(
        backend, "textfile", "prometheus_client", "prometheus"
    ):
        hooks.append(TextfileHook(backend, Path(settings.textfile)))
    return AllHooks(hooks, backend.config.database)


def _installed(backend: CronRunnerBackend, key: str, module: str, extra: str) -> bool:
    """Say whether an optional extra's module can be imported; warn in one line if not."""
    if importlib.util.find_spec(module) is not None:
        return True
    logger.warning(
        "TASKS[%r]['OPTIONS']['monitoring'][%r] is set but %s is not installed (pip install "
        "'django-cronrunner[%s]'); the batch runs without it.",
        backend.alias,
        key,
        module,
        extra,
    )
    return False


def _sentry_hooks(backend: CronRunnerBackend) -> MonitoringHook:
    # Imported only when configured and installed: the sentry extra is optional.
    from django_cronrunner.operations.sentry import SentryHooks

    sentry = backend.config.monitoring.sentry
    assert sentry is not None
    schedules: dict[str, tuple[str, str]] = {}
    if sentry.schedules:
        from django_cronrunner.scheduling.schedules import parse_schedules

        specs, _ = parse_schedules(backend)
        schedules = {spec.name: (spec.cron.fields, spec.cron.timezone) for spec in specs}
    return SentryHooks(sentry, schedules)
