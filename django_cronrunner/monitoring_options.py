"""OPTIONS['monitoring']: check-in URLs, Sentry Crons and the metrics textfile, checked once."""

from __future__ import annotations

import importlib.util
import math
import re
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

#: Sentry's monitor slugs: lower-case letters, digits, hyphens and underscores, at most 50.
SLUG_LENGTH = 50


@dataclass(frozen=True, slots=True)
class PingUrls:
    """Dead man's switch URLs (healthchecks.io, Cronitor); a None URL is not pinged."""

    start: str | None = None
    success: str | None = None
    failure: str | None = None
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class SentryCrons:
    """Sentry Crons check-ins: one monitor for the runner, and optionally one per schedule."""

    monitor: str
    #: How often cron starts run_due_tasks, so that Sentry notices a missed run.
    cron: str = "* * * * *"
    schedules: bool = False
    #: Used only when the project has not called sentry_sdk.init() itself, and then for the
    #: check-ins alone: no integration, so no error, log or trace is reported.
    dsn: str | None = None
    margin_minutes: int = 2
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class Monitoring:
    """Everything a batch reports to the outside world."""

    checkins: PingUrls | None = None
    sentry: SentryCrons | None = None
    #: A node_exporter textfile-collector file, rewritten at the end of each batch.
    textfile: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.checkins or self.sentry or self.textfile)


def parse_monitoring(alias: str, raw: object) -> Monitoring:
    """Build the monitoring settings from OPTIONS['monitoring'], naming the first bad key."""
    where = f"TASKS[{alias!r}]['OPTIONS']['monitoring']"
    section = _section(where, raw, {"checkins", "sentry", "textfile"})
    textfile = section.get("textfile")
    if textfile is not None and not (isinstance(textfile, str) and textfile):
        raise ImproperlyConfigured(f"{where}['textfile'] must be a file path.")
    return Monitoring(
        checkins=_pings(f"{where}['checkins']", section["checkins"])
        if "checkins" in section
        else None,
        sentry=_sentry(alias, f"{where}['sentry']", section["sentry"])
        if "sentry" in section
        else None,
        textfile=textfile,
    )


def _pings(where: str, raw: object) -> PingUrls:
    section = _section(where, raw, {"url", "start", "success", "failure", "timeout"})
    for key in ("url", "start", "success", "failure"):
        if key in section and not _is_url(section[key]):
            raise ImproperlyConfigured(f"{where}[{key!r}] must be an http:// or https:// URL.")
    urls: dict[str, str | None] = {
        key: str(value) for key, value in section.items() if key != "timeout"
    }
    base = urls.get("url")
    # healthchecks.io's convention: the URL itself for success, /start and /fail beside it.
    start = urls.get("start", beside(base, "start") if base else None)
    success = urls.get("success", base)
    failure = urls.get("failure", beside(base, "fail") if base else None)
    if not (start or success or failure):
        raise ImproperlyConfigured(
            f"{where} needs 'url', or at least one of start/success/failure."
        )
    return PingUrls(start, success, failure, _seconds(where, section.get("timeout", 5.0)))


def beside(url: str, leaf: str) -> str:
    """Return url with `/leaf` added to its path (not to its query), one slash between."""
    parts = urllib.parse.urlsplit(url)
    return parts._replace(path=f"{parts.path.rstrip('/')}/{leaf}").geturl()


def _sentry(alias: str, where: str, raw: object) -> SentryCrons:
    section = _section(where, raw, {"monitor", "cron", "schedules", "dsn", "margin", "timeout"})
    monitor = section.get("monitor", f"cronrunner-{alias}")
    if not isinstance(monitor, str) or not monitor:
        raise ImproperlyConfigured(f"{where}['monitor'] must be a monitor slug.")
    cron = section.get("cron", "* * * * *")
    if not isinstance(cron, str):
        raise ImproperlyConfigured(f"{where}['cron'] must be a crontab expression.")
    schedules = section.get("schedules", False)
    if not isinstance(schedules, bool):
        raise ImproperlyConfigured(f"{where}['schedules'] must be True or False.")
    dsn = section.get("dsn")
    if dsn is not None and not isinstance(dsn, str):
        raise ImproperlyConfigured(f"{where}['dsn'] must be a Sentry DSN string.")
    margin = section.get("margin", 2)
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 1:
        raise ImproperlyConfigured(f"{where}['margin'] must be a whole number of minutes, >= 1.")
    return SentryCrons(
        monitor, cron, schedules, dsn, margin, _seconds(where, section.get("timeout", 5.0))
    )


def _section(where: str, raw: object, known: set[str]) -> Mapping[str, object]:
    if not isinstance(raw, Mapping) or not set(raw) <= known:
        raise ImproperlyConfigured(f"{where} must be a dict with keys among {sorted(known)}.")
    return raw


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _seconds(where: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= 60
        or math.isnan(value)
    ):
        raise ImproperlyConfigured(f"{where}['timeout'] must be a number of seconds, 0 to 60.")
    return float(value)


def monitor_slug(name: str) -> str:
    """Return the Sentry monitor slug for a schedule or runner name."""
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")[:SLUG_LENGTH] or "schedule"


def check_monitoring(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report the monitoring of every CronRunner backend that cannot work as configured."""
    from django_cronrunner.compat import task_backends

    found: list[checks.CheckMessage] = []
    for backend in task_backends.all():
        # Read by attribute: this module sits below backend.py, which parses these options.
        config: Any = getattr(backend, "config", None)
        monitoring = getattr(config, "monitoring", None)
        if isinstance(monitoring, Monitoring):
            found.extend(monitoring_problems(backend.alias, monitoring, config.schedules))
    return found


def monitoring_problems(
    alias: str, monitoring: Monitoring, schedule_names: Iterable[str]
) -> list[checks.CheckMessage]:
    """Return an error for a missing extra and for Sentry monitors that two names share."""
    where = f"TASKS[{alias!r}]['OPTIONS']['monitoring']"
    found: list[checks.CheckMessage] = []
    if monitoring.sentry is not None and importlib.util.find_spec("sentry_sdk") is None:
        found.append(
            checks.Error(
                f"{where}['sentry'] is set but sentry_sdk is not installed: runs send no "
                "Sentry check-in (they run their tasks all the same).",
                hint="pip install 'django-cronrunner[sentry]'",
                id="django_cronrunner.E030",
            )
        )
    if monitoring.textfile is not None and importlib.util.find_spec("prometheus_client") is None:
        found.append(
            checks.Error(
                f"{where}['textfile'] is set but prometheus_client is not installed: runs "
                "write no metrics (they run their tasks all the same).",
                hint="pip install 'django-cronrunner[prometheus]'",
                id="django_cronrunner.E031",
            )
        )
    if monitoring.sentry is not None and monitoring.sentry.schedules:
        found.extend(_shared_monitors(where, monitoring.sentry.monitor, schedule_names))
    return found


def _shared_monitors(
    where: str, runner_monitor: str, schedule_names: Iterable[str]
) -> list[checks.CheckMessage]:
    """Return an error for each Sentry monitor that two schedules, or a schedule and the
    runner, would check in on: their check-ins would mix, each upserting its own crontab."""
    by_slug: defaultdict[str, list[str]] = defaultdict(list)
    for name in sorted(schedule_names):
        by_slug[monitor_slug(name)].append(f"schedule {name!r}")
    if runner_monitor in by_slug:
        by_slug[runner_monitor].append("the runner")
    return [
        checks.Error(
            f"{where}['sentry']: {' and '.join(names)} would check in on the same Sentry "
            f"monitor, {slug!r}.",
            hint="Rename the schedules (a monitor slug is the name in lower case, with '-' for "
            f"anything but letters, digits, '-' and '_', cut at {SLUG_LENGTH} characters), or "
            "give the runner another 'monitor'.",
            id="django_cronrunner.E032",
        )
        for slug, names in sorted(by_slug.items())
        if len(names) > 1
    ]
