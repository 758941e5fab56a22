"""The backend's OPTIONS, checked once when the backend is created."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from cronrunner.errors import InvalidTaskSettings, LockFileError
from cronrunner.retry import RetryPolicy
from django_cronrunner.monitoring_options import Monitoring, parse_monitoring
from django_cronrunner.storage.retention import Retention
from django_cronrunner.task import check_timeout

KNOWN_OPTIONS = {
    "database",
    "lock_file",
    "lease_seconds",
    "claim_size",
    "schedules",
    "retention",
    "retry",
    "timeout",
    "monitoring",
}

#: Bounds of OPTIONS['lease_seconds']; a run renews its leases every quarter lease.
MIN_LEASE = 10
MAX_LEASE = 86_400


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Validated OPTIONS of one CronRunnerBackend."""

    alias: str
    database: str = "default"
    lock_file: str | None = None
    lease_seconds: float = 120.0
    claim_size: int = 32
    schedules: Mapping[str, Any] = field(default_factory=dict)
    retention: Retention = field(default_factory=Retention)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None
    monitoring: Monitoring = field(default_factory=Monitoring)

    @classmethod
    def parse(cls, alias: str, options: dict[str, Any]) -> BackendOptions:
        """Build options from a TASKS entry's OPTIONS, naming the first bad one."""
        unknown = set(options) - KNOWN_OPTIONS
        if unknown:
            raise ImproperlyConfigured(
                f"TASKS[{alias!r}]['OPTIONS'] has unknown keys {sorted(unknown)}; "
                f"known keys are {sorted(KNOWN_OPTIONS)}."
            )
        database = options.get("database", "default")
        if not isinstance(database, str):
            raise ImproperlyConfigured(f"TASKS[{alias!r}]['OPTIONS']['database'] must be a string.")
        lock_file = options.get("lock_file")
        if lock_file is not None and not isinstance(lock_file, str | os.PathLike):
            raise ImproperlyConfigured(f"TASKS[{alias!r}]['OPTIONS']['lock_file'] must be a path.")
        lease = options.get("lease_seconds", 120.0)
        # NaN passes every comparison and infinity overflows the lease's datetime: refuse both.
        if (
            isinstance(lease, bool)
            or not isinstance(lease, int | float)
            or not MIN_LEASE <= lease <= MAX_LEASE
        ):
            raise ImproperlyConfigured(
                f"TASKS[{alias!r}]['OPTIONS']['lease_seconds'] must be a number of at least "
                f"{MIN_LEASE} and at most {MAX_LEASE} (a day)."
            )
        claim_size = options.get("claim_size", 32)
        if isinstance(claim_size, bool) or not isinstance(claim_size, int) or claim_size < 1:
            raise ImproperlyConfigured(
                f"TASKS[{alias!r}]['OPTIONS']['claim_size'] must be a whole number of at least 1."
            )
        schedules = options.get("schedules", {})
        if not isinstance(schedules, Mapping) or not all(isinstance(k, str) for k in schedules):
            raise ImproperlyConfigured(
                f"TASKS[{alias!r}]['OPTIONS']['schedules'] must be a dict keyed by schedule name."
            )
        return cls(
            alias=alias,
            schedules=schedules,
            retention=Retention.parse(alias, options.get("retention", {})),
            retry=parse_retry(alias, options.get("retry", {})),
            timeout=parse_timeout(alias, options.get("timeout")),
            monitoring=parse_monitoring(alias, options.get("monitoring", {})),
            database=database,
            lock_file=os.fspath(lock_file) if lock_file is not None else None,
            lease_seconds=float(lease),
            claim_size=claim_size,
        )

    def lock_path(self) -> Path:
        """Return the configured lock file, or one private to this user, site and database."""
        if self.lock_file is not None:
            return Path(self.lock_file)
        db = settings.DATABASES.get(self.database, {})
        identity = "|".join(
            str(part)
            for part in (
                settings.SETTINGS_MODULE,
                db.get("ENGINE"),
                db.get("NAME"),
                db.get("HOST"),
                db.get("PORT"),
                self.alias,
            )
        )
        digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
        return private_directory() / f"{self.alias}-{digest}.lock"


def private_directory() -> Path:
    """Return a directory only this user can write, creating it if needed."""
    directory = Path(tempfile.gettempdir()) / f"django-cronrunner-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    info = directory.lstat()
    # Another user could have created the name first in a shared /tmp: never trust theirs.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise LockFileError(
            f"{directory}, where lock files go by default, is not a directory owned by this "
            "user and closed to others."
        )
    return directory


def parse_retry(alias: str, raw: object) -> RetryPolicy:
    """Build the backend's default retry policy from OPTIONS['retry']."""
    where = f"TASKS[{alias!r}]['OPTIONS']['retry']"
    known = {"max_attempts", "backoff", "delay", "max_delay", "jitter"}
    if not isinstance(raw, Mapping) or not set(raw) <= known:
        raise ImproperlyConfigured(f"{where} must be a dict with keys among {sorted(known)}.")
    try:
        return RetryPolicy(**raw)
    except InvalidTaskSettings as e:
        raise ImproperlyConfigured(f"{where}: {e}") from e


def parse_timeout(alias: str, raw: object) -> float | None:
    """Read OPTIONS['timeout'], the default limit on a task's running time in seconds."""
    try:
        check_timeout(raw, f"TASKS[{alias!r}]['OPTIONS']['timeout']")
    except InvalidTaskSettings as e:
        raise ImproperlyConfigured(str(e)) from e
    return None if raw is None else float(raw)  # type: ignore[arg-type]
