"""Checks for a new install, its crontab and systemd lines, and a dry run of the next batch."""

from __future__ import annotations

import getpass
import os
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from stat import S_IWUSR
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor

from cronrunner.clock import Clock
from cronrunner.errors import LockFileError
from cronrunner.lock import check_lock_path
from cronrunner.schedule import due_slots
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.models import ScheduleState, TaskDuration, TaskRecord
from django_cronrunner.operations.failures import (
    explain_database_error,
    lock_fix,
    one_line,
    sentence,
    sqlite_open_fix,
    sqlite_path,
)
from django_cronrunner.options import BackendOptions
from django_cronrunner.scheduling.schedules import parse_schedules
from django_cronrunner.storage.database_clock import DatabaseClock

MIN_BUSY_TIMEOUT = 5.0

#: Seconds by which this host's clock may differ from the database's before setup warns.
MAX_CLOCK_SKEW = 5.0


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


def check_manage_py(manage_py: Path) -> Finding:
    """Say whether the lines shown would find manage.py."""
    if manage_py.is_file():
        return Finding(Level.OK, f"{manage_py} is the project's manage.py.")
    return Finding(
        Level.ERROR,
        f"There is no {manage_py}: the lines above would run nothing.",
        "Run this command as `python manage.py cronrunner_setup` in the project, or pass "
        "--manage-py with the path of its manage.py.",
    )


def check_database(backend: CronRunnerBackend) -> Finding:
    """Say whether the database can be reached and, once migrated, written."""
    alias = backend.config.database
    connection = connections[alias]
    try:
        connection.ensure_connection()
    except DatabaseError as e:
        fix = (
            sentence(sqlite_open_fix(alias))
            if connection.vendor == "sqlite"
            else f"Check that its server is running and that DATABASES[{alias!r}] (HOST, "
            "PORT, USER) points at it."
        )
        return Finding(
            Level.ERROR, f"The database {alias!r} cannot be reached: {one_line(str(e))}", fix
        )
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    if TaskDuration._meta.db_table not in tables:
        return Finding(Level.OK, f"The database {alias!r} is reachable.")  # migrations next
    try:
        probe_write(alias)
    except DatabaseError as e:
        return Finding(
            Level.ERROR,
            f"The database {alias!r} is reachable but cannot be written: {one_line(str(e))}",
            writable_hint(alias, connection),
        )
    return Finding(Level.OK, f"The database {alias!r} is reachable and writable.")


def probe_write(alias: str) -> None:
    """Write one row as a run would and roll it back: raise DatabaseError if writes fail."""
    with transaction.atomic(using=alias):
        TaskDuration.objects.using(alias).create(
            backend_name="cronrunner_setup", task_path="write probe"
        )
        transaction.set_rollback(True, using=alias)


def write_problem(alias: str) -> str | None:
    """Say why the database cannot be written, in the commands' one-line form; None if it can."""
    try:
        probe_write(alias)
    except DatabaseError as e:
        return explain_database_error(e, alias)
    return None


def writable_hint(alias: str, connection: BaseDatabaseWrapper) -> str:
    user = getpass.getuser()
    if connection.vendor == "sqlite":
        path = sqlite_path(alias)
        grant = grant_write(path, path.parent)
        where = (
            f"`{grant}`"
            if grant
            else "both are writable by their modes, so check that the filesystem is not "
            "mounted read-only"
        )
        return (
            f"Let {user} (the user cron runs as) write the file and its directory, where "
            f"SQLite creates its journal: {where}; a file: URI in NAME must not say mode=ro."
        )
    return (
        f"Give the user of DATABASES[{alias!r}] the right to INSERT, UPDATE and DELETE, on a "
        "primary server, not a read-only replica."
    )


def grant_write(*paths: Path) -> str:
    """Return the shell command that lets this user write `paths`: a chown of those another
    user owns, a chmod u+w of those without the owner's write bit; "" when neither applies."""
    user, uid = getpass.getuser(), os.getuid()
    existing = [(path, path.stat()) for path in paths if path.exists()]
    foreign = [shlex.quote(str(path)) for path, info in existing if info.st_uid != uid]
    locked = [shlex.quote(str(path)) for path, info in existing if not info.st_mode & S_IWUSR]
    commands = []
    if foreign:
        commands.append(f"sudo chown {user} {' '.join(foreign)}")
    if locked:
        commands.append(f"chmod u+w {' '.join(locked)}")
    return " && ".join(commands)


def check_log(log: Path) -> Finding:
    """Say whether the crontab line, run as this user, can append to `log` (creating its
    directory with mkdir -p)."""
    user = getpass.getuser()
    fix = f"or pass --log with a file {user} can write."
    if log.is_dir():
        return Finding(Level.ERROR, f"The log {log} is a directory.", f"Pass --log FILE {fix}")
    if log.exists():
        if os.access(log, os.W_OK):
            return Finding(Level.OK, f"The log {log} is writable.")
        grant = grant_write(log) or f"sudo chown {user} {shlex.quote(str(log))}"
        return Finding(
            Level.ERROR, f"The log {log} is not writable by {user}.", f"Run `{grant}`, {fix}"
        )
    existing = log.parent
    while not existing.exists():
        existing = existing.parent
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        created = "" if existing == log.parent else f" (the line creates {log.parent})"
        return Finding(Level.OK, f"The log {log} can be created{created}.")
    directory = shlex.quote(str(log.parent))
    return Finding(
        Level.ERROR,
        f"The log {log} cannot be created: {existing} is not a directory {user} can write.",
        f"Run `sudo mkdir -p {directory} && sudo chown {user} {directory}`, {fix}",
    )


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
        check_lock_path(path)
    except LockFileError as e:
        return Finding(Level.ERROR, str(e), lock_fix(e))
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


def check_clock(backend: CronRunnerBackend, host_clock: Clock | None = None) -> Finding:
    using = backend.config.database
    if connections[using].vendor == "sqlite":
        return Finding(Level.OK, "SQLite keeps this host's clock: there is no other to differ.")
    offset = DatabaseClock(using, host_clock).offset
    if abs(offset) > MAX_CLOCK_SKEW:
        direction = "behind" if offset > 0 else "ahead of"
        return Finding(
            Level.WARNING,
            f"This host's clock is {abs(offset):.1f}s {direction} the database {using!r}'s. "
            "Runs decide on the database's clock, but the run_after times your code computes "
            "from timezone.now(), log lines and the minute cron starts a run at use this host's.",
            "Keep every host's clock synchronised (chrony or systemd-timesyncd).",
        )
    agree = f"This host's clock and the database {using!r}'s agree (within {abs(offset):.1f}s)."
    return Finding(Level.OK, agree)


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
