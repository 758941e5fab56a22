"""Checks for a new install, its crontab and systemd lines, and a dry run of the next batch."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor

from cronrunner.errors import CronRunnerError
from cronrunner.schedule import due_slots
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.models import ScheduleState, TaskRecord
from django_cronrunner.options import BackendOptions
from django_cronrunner.scheduling import parse_schedules

MIN_BUSY_TIMEOUT = 5.0


class Level(StrEnum):
    OK = "OK"
    WARNING = "WARNING"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Finding:
    """The result of one check: a level, one line, and what to do about it."""

    level: Level
    message: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class Invocation:
    """Where and how cron should start run_due_tasks for this project."""

    python: str
    manage_py: Path
    settings_module: str | None
    max_seconds: float
    log: Path

    @property
    def directory(self) -> Path:
        return self.manage_py.parent

    def command(self) -> str:
        parts = [self.python, str(self.manage_py), "run_due_tasks", "--max-seconds"]
        return shlex.join([*parts, f"{self.max_seconds:g}"])

    def crontab_line(self) -> str:
        """Return one crontab line: absolute paths, settings module, log redirect."""
        environment = (
            f"DJANGO_SETTINGS_MODULE={shlex.quote(self.settings_module)} "
            if self.settings_module
            else ""
        )
        return (
            f"* * * * * cd {shlex.quote(str(self.directory))} && {environment}{self.command()} "
            f">> {shlex.quote(str(self.log))} 2>&1"
        )

    def systemd_units(self, user: str) -> dict[str, str]:
        """Return the service and timer, shaped as contrib/systemd's, for this project."""
        environment = (
            f"Environment=DJANGO_SETTINGS_MODULE={self.settings_module}\n"
            if self.settings_module
            else ""
        )
        service = (
            "[Unit]\nDescription=django-cronrunner: run due background tasks\n\n"
            "[Service]\nType=oneshot\n"
            f"User={user}\nWorkingDirectory={self.directory}\n{environment}"
            f"ExecStart={self.command()}\n"
            f"TimeoutStopSec={int(self.max_seconds) + 70}\nKillMode=mixed\n"
        )
        timer = (
            "[Unit]\nDescription=Run django-cronrunner every minute\n\n"
            "[Timer]\nOnCalendar=minutely\nPersistent=true\nAccuracySec=1s\n"
            "Unit=django-cronrunner.service\n\n"
            "[Install]\nWantedBy=timers.target\n"
        )
        return {"django-cronrunner.service": service, "django-cronrunner.timer": timer}


def find_manage_py(explicit: str | None) -> Path:
    """Return manage.py: as given, else the script being run, else ./manage.py."""
    if explicit:
        return Path(explicit).resolve()
    script = Path(sys.argv[0])
    if script.name == "manage.py":
        return script.resolve()
    return (Path.cwd() / "manage.py").resolve()


def check_database(backend: CronRunnerBackend) -> Finding:
    try:
        connections[backend.config.database].ensure_connection()
    except DatabaseError as e:
        return Finding(
            Level.ERROR,
            f"The database {backend.config.database!r} cannot be reached: "
            f"{' '.join(str(e).split())}",
            "Check DATABASES and that the server is running.",
        )
    return Finding(Level.OK, f"The database {backend.config.database!r} is reachable.")


def check_migrations(backend: CronRunnerBackend) -> Finding:
    connection = connections[backend.config.database]
    executor = MigrationExecutor(connection)
    targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "django_cronrunner"]
    pending = executor.migration_plan(targets)
    if pending:
        names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in pending)
        return Finding(
            Level.ERROR,
            f"Migrations not applied: {names}.",
            "Run `manage.py migrate`.",
        )
    return Finding(Level.OK, "django_cronrunner's migrations are applied.")


def check_lock(config: BackendOptions) -> Finding:
    try:
        path = config.lock_path()
    except CronRunnerError as e:
        return Finding(Level.ERROR, str(e), "Set OPTIONS['lock_file'] to a path you own.")
    directory = path.parent
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        return Finding(
            Level.ERROR,
            f"The lock file's directory {directory} is missing or not writable.",
            "Create it, or set OPTIONS['lock_file'] / --lock-file to a writable place.",
        )
    return Finding(Level.OK, f"The lock file {path} can be created.")


def check_sqlite(backend: CronRunnerBackend) -> list[Finding]:
    connection = connections[backend.config.database]
    if connection.vendor != "sqlite":
        return []
    findings = []
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = str(cursor.fetchone()[0]).lower()
    if mode != "wal":
        findings.append(
            Finding(
                Level.WARNING,
                f"SQLite's journal mode is {mode!r}, not 'wal': web requests and runs will "
                "block each other.",
                "Add 'init_command': 'PRAGMA journal_mode=WAL;' to the database OPTIONS.",
            )
        )
    options = connection.settings_dict.get("OPTIONS", {})
    timeout = options.get("timeout")
    if not isinstance(timeout, int | float) or timeout < MIN_BUSY_TIMEOUT:
        findings.append(
            Finding(
                Level.WARNING,
                f"SQLite's busy timeout is {timeout!r}: a busy database fails at once.",
                "Set 'timeout': 20 in the database OPTIONS.",
            )
        )
    if options.get("transaction_mode") != "IMMEDIATE":
        findings.append(
            Finding(
                Level.WARNING,
                "SQLite transactions are not IMMEDIATE: writers can fail with 'database is "
                "locked' instead of waiting.",
                "Set 'transaction_mode': 'IMMEDIATE' in the database OPTIONS.",
            )
        )
    if not findings:
        findings.append(Finding(Level.OK, "SQLite uses WAL, IMMEDIATE transactions, a timeout."))
    return findings


def system_time_zone(etc: Path = Path("/etc")) -> str:
    """Return the zone the cron daemon reads crontab times in: the system's, not this process's
    (Django sets TZ for itself, which cron never sees)."""
    localtime = etc / "localtime"
    if localtime.is_symlink():
        return str(localtime.resolve()).split("zoneinfo/", 1)[-1]
    timezone_file = etc / "timezone"
    if timezone_file.exists():
        return timezone_file.read_text().strip()
    return "UTC"  # no zone configured: the C library's default


def same_zone(first: str, second: str) -> bool:
    """Say whether two zone names keep the same clock (UTC and Etc/UTC do) over two years."""
    try:
        zones = ZoneInfo(first), ZoneInfo(second)
    except (ZoneInfoNotFoundError, ValueError):
        return first == second
    year = datetime.now(UTC).year
    instants = [datetime(year + month // 12, month % 12 + 1, 15, tzinfo=UTC) for month in range(24)]
    return all(
        instant.astimezone(zones[0]).utcoffset() == instant.astimezone(zones[1]).utcoffset()
        for instant in instants
    )


def check_time_zones() -> Finding:
    system, django = system_time_zone(), settings.TIME_ZONE
    if not same_zone(system, django):
        return Finding(
            Level.WARNING,
            f"cron runs in {system}, Django in {django}: schedules are still right (each uses "
            "its own zone), but times you write in the crontab itself are read in "
            f"{system}.",
        )
    return Finding(Level.OK, f"cron and Django agree on the time zone ({django}).")


def check_backend(backend: CronRunnerBackend) -> list[Finding]:
    return [
        Finding(Level.ERROR, f"{message.id}: {message.msg}", message.hint or "")
        for message in backend.check()
    ]


def dry_run(backend: CronRunnerBackend, now: datetime) -> list[str]:
    """Say what run_due_tasks would do now, reading only: due tasks per queue, due slots."""
    using = backend.config.database
    counts: dict[str, int] = {}
    due = TaskRecord.objects.using(using).filter(backend_name=backend.alias).due(now)
    for queue in due.values_list("queue_name", flat=True):
        counts[queue] = counts.get(queue, 0) + 1
    lines = [f"{count} due in queue {queue!r}" for queue, count in sorted(counts.items())]
    if not counts:
        lines.append("no task is due")
    specs, _ = parse_schedules(backend)
    states = {
        state.name: state
        for state in ScheduleState.objects.using(using).filter(backend_name=backend.alias)
    }
    for spec in specs:
        state = states.get(spec.name)
        if not spec.enabled or (state is not None and state.paused):
            lines.append(f"schedule {spec.name!r}: off")
        elif state is None:
            lines.append(f"schedule {spec.name!r}: would start tracking (nothing is backfilled)")
        else:
            slots = due_slots(spec.cron, state.checked_until, now, spec.catch_up)
            lines.append(f"schedule {spec.name!r}: {len(slots)} slot(s) would be enqueued")
    return lines
