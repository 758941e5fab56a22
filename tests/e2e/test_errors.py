"""Operational failures of the three commands, each shown as the one line a person reads."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from django.db import connection

from django_cronrunner.models import TaskRecord
from tests.e2e.conftest import REPO, file_modes_enforced, subprocess_env
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

VENDOR = connection.vendor
FIX_WRITE = (
    "give the user that runs this command write access (for SQLite, to the file and its directory)."
)
FIX_REACH = (
    "check that its server is running and that DATABASES['default'] (HOST, PORT, USER) "
    "points at it."
)


def manage(
    command: str, *args: str, env: dict[str, str], prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "django", command, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """Return the only line on stderr, failing if there are more."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def broken(**options: object) -> dict[str, str]:
    return subprocess_env(
        DJANGO_SETTINGS_MODULE="tests.e2e.broken_settings",
        CRONRUNNER_TEST_DB_OPTIONS=json.dumps(options),
    )


def read_only_env() -> dict[str, str]:
    if VENDOR == "sqlite":
        # A read-only connection, which refuses writes even to root.
        name = connection.settings_dict["NAME"]
        return subprocess_env(CRONRUNNER_SQLITE_NAME=f"file:{name}?mode=ro")
    if VENDOR == "postgresql":
        return broken(options="-c default_transaction_read_only=on")
    return broken(init_command="SET SESSION TRANSACTION READ ONLY")


READ_ONLY_MESSAGE = {
    "sqlite": "attempt to write a readonly database",
    "postgresql": "cannot execute UPDATE in a read-only transaction",
    "mysql": "1792: Cannot execute statement in a READ ONLY transaction",
}[VENDOR]


def test_run_due_tasks_on_a_read_only_database(tmp_path: Path) -> None:
    result = tasks.add.enqueue(1, 2)
    run = manage("run_due_tasks", "--lock-file", str(tmp_path / "l"), env=read_only_env())
    assert run.returncode == 1
    assert one_line(run) == (
        f"CommandError: The database 'default' cannot be written ({READ_ONLY_MESSAGE}): "
        + FIX_WRITE
    )
    assert TaskRecord.objects.get(pk=result.id).status == "READY"


def test_status_check_names_a_database_it_cannot_write() -> None:
    # Before any silence shows it: every run fails from now on.
    run = manage("cronrunner_status", "--check", env=read_only_env())
    assert run.returncode == 1
    first = run.stderr.strip().splitlines()[0]
    assert first.startswith("PROBLEM: The database 'default' cannot be written (")
    assert first.endswith(FIX_WRITE)
    assert "OK: no problems found." not in run.stdout


def test_a_traceback_only_at_verbosity_2_or_with_traceback(tmp_path: Path) -> None:
    args = ("run_due_tasks", "--lock-file", str(tmp_path / "l"))
    quiet = manage(*args, env=read_only_env())
    assert "Traceback" not in quiet.stderr
    for extra in ("-v2", "--traceback"):
        loud = manage(*args, extra, env=read_only_env())
        assert loud.returncode == 1
        assert "Traceback (most recent call last):" in loud.stderr
        assert READ_ONLY_MESSAGE in loud.stderr


@pytest.mark.skipif(VENDOR != "sqlite", reason="a full disk is simulated with SQLite's page cap")
def test_run_due_tasks_on_a_full_database(tmp_path: Path) -> None:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
        cursor.execute("PRAGMA freelist_count")
        free_pages = cursor.fetchone()[0]
        cursor.execute("PRAGMA page_size")
        page_size = cursor.fetchone()[0]
    # The result needs more pages than the capped file has free (earlier tests' deleted rows
    # leave some), so it must grow, which the cap refuses.
    payload = "x" * ((free_pages + 50) * page_size)
    result = tasks.append_line.enqueue(str(tmp_path / "out"), payload)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_count")
        pages = cursor.fetchone()[0]
    env = broken(init_command=f"PRAGMA max_page_count={pages}")
    run = manage("run_due_tasks", "--lock-file", str(tmp_path / "l"), env=env)
    assert run.returncode == 1
    assert one_line(run) == (
        "CommandError: The database 'default' is full (database or disk is full): free disk "
        "space or raise the database's size limit, then run again."
    )
    # Refused writes are rolled back: the task is still there for the next run.
    assert TaskRecord.objects.get(pk=result.id).status in {"READY", "RUNNING"}


@pytest.fixture
def unmigrated(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment whose database exists but has no tables."""
    if VENDOR == "sqlite":
        yield subprocess_env(CRONRUNNER_SQLITE_NAME=str(tmp_path / "empty.sqlite3"))
        return
    name = f"{connection.settings_dict['NAME']}_nomig"
    key = "CRONRUNNER_PG_NAME" if VENDOR == "postgresql" else "CRONRUNNER_MYSQL_NAME"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield subprocess_env(**{key: name})
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")


MISSING_TABLE = {
    "sqlite": "no such table: cronrunner_task",
    "postgresql": 'relation "cronrunner_task" does not exist',
    "mysql": "1146: Table '{name}.cronrunner_task' doesn't exist",
}[VENDOR]


def missing_line(env: dict[str, str]) -> str:
    name = env.get("CRONRUNNER_PG_NAME" if VENDOR == "postgresql" else "CRONRUNNER_MYSQL_NAME")
    return (
        "CommandError: The database 'default' lacks django_cronrunner's tables or columns "
        f"({MISSING_TABLE.format(name=name)}): run manage.py migrate."
    )


@pytest.mark.parametrize("command", ["run_due_tasks", "cronrunner_status"])
def test_migrations_not_applied(unmigrated: dict[str, str], command: str, tmp_path: Path) -> None:
    args = ("--lock-file", str(tmp_path / "l")) if command == "run_due_tasks" else ()
    run = manage(command, *args, env=unmigrated)
    assert run.returncode == 1
    assert one_line(run) == missing_line(unmigrated)


def test_setup_names_migrations_not_applied(unmigrated: dict[str, str]) -> None:
    run = manage("cronrunner_setup", env=unmigrated)
    assert run.returncode == 1
    assert one_line(run) == "cronrunner_setup: fix the errors above, then run it again."
    assert "ERROR   Migrations not applied: django_cronrunner.0001_initial" in run.stdout
    assert "Run `manage.py migrate`." in run.stdout


def down_env(tmp_path: Path) -> dict[str, str]:
    if VENDOR == "sqlite":
        return subprocess_env(CRONRUNNER_SQLITE_NAME=str(tmp_path / "missing-dir" / "db.sqlite3"))
    if VENDOR == "postgresql":
        return subprocess_env(CRONRUNNER_PG_PORT="1")
    return subprocess_env(CRONRUNNER_MYSQL_PORT="1")


def down_line(tmp_path: Path) -> str:
    if VENDOR == "sqlite":
        return (
            "CommandError: The SQLite database of 'default' cannot be opened (unable to open "
            f"database file): its directory {tmp_path / 'missing-dir'} does not exist: create "
            "it, or correct DATABASES['default']['NAME']."
        )
    if VENDOR == "postgresql":
        return (
            "CommandError: The database 'default' cannot be reached (connection failed: "
            'connection to server at "127.0.0.1", port 1 failed: Connection refused Is the '
            f"server running on that host and accepting TCP/IP connections?): {FIX_REACH}"
        )
    return (
        "CommandError: The database 'default' cannot be reached (2002: Can't connect to "
        f"server on '127.0.0.1' (115)): {FIX_REACH}"
    )


@pytest.mark.parametrize("command", ["run_due_tasks", "cronrunner_status"])
def test_database_down(tmp_path: Path, command: str) -> None:
    args = ("--lock-file", str(tmp_path / "l")) if command == "run_due_tasks" else ()
    run = manage(command, *args, env=down_env(tmp_path))
    assert run.returncode == 1
    assert one_line(run) == down_line(tmp_path)


@pytest.mark.skipif(VENDOR != "sqlite", reason="SQLite's own file and directory")
def test_an_sqlite_database_on_a_read_only_filesystem(tmp_path: Path) -> None:
    # SQLite in WAL mode (as the Quick start sets it) cannot create its -wal and -shm files
    # there, and says only "unable to open database file".
    if os.geteuid() != 0 or subprocess.run(["unshare", "--mount", "true"]).returncode != 0:
        pytest.skip("a read-only bind mount needs root and mount namespaces")
    site = tmp_path / "site"
    site.mkdir()
    database = site / "db.sqlite3"
    with connection.cursor() as cursor:
        cursor.execute("VACUUM INTO %s", [str(database)])
    copy = sqlite3.connect(database)
    copy.execute("PRAGMA journal_mode=WAL")  # kept in the file's header
    copy.close()
    read_only = [
        "unshare",
        "--mount",
        "sh",
        "-c",
        'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
        str(site),
    ]
    env = subprocess_env(CRONRUNNER_SQLITE_NAME=str(database))
    run = manage("run_due_tasks", "--lock-file", str(tmp_path / "l"), env=env, prefix=read_only)
    assert run.returncode == 1
    assert one_line(run) == (
        "CommandError: The SQLite database of 'default' cannot be opened (unable to open "
        f"database file): let the user that runs this command write {database} and its "
        "directory, where SQLite creates its journal (check their owner and modes, and that "
        "the filesystem is not mounted read-only)."
    )


def test_setup_names_a_database_that_is_down(tmp_path: Path) -> None:
    run = manage("cronrunner_setup", env=down_env(tmp_path))
    assert run.returncode == 1
    assert one_line(run) == "cronrunner_setup: fix the errors above, then run it again."
    assert "ERROR   The database 'default' cannot be reached" in run.stdout


def test_lock_directory_missing(tmp_path: Path) -> None:
    lock = tmp_path / "missing" / "run.lock"
    run = manage("run_due_tasks", "--lock-file", str(lock), env=subprocess_env())
    assert run.returncode == 1
    assert one_line(run) == (
        f"CommandError: The lock file's directory {lock.parent} does not exist. Create the "
        "directory, or give --lock-file (or OPTIONS['lock_file']) a path in a directory this "
        "user can write."
    )


def test_lock_directory_not_writable(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o555)
    lock = locks / "run.lock"
    prefix = file_modes_enforced()
    fix = "or give --lock-file (or OPTIONS['lock_file']) a path in a directory this user can write."
    run = manage("run_due_tasks", "--lock-file", str(lock), env=subprocess_env(), prefix=prefix)
    assert run.returncode == 1
    assert one_line(run) == (
        f"CommandError: The lock file's directory {locks} is not writable by this user. "
        f"Let this user write in the directory, {fix}"
    )
    locks.chmod(0o755)
    lock.touch(mode=0o444)
    run = manage("run_due_tasks", "--lock-file", str(lock), env=subprocess_env(), prefix=prefix)
    assert run.returncode == 1
    assert one_line(run) == (
        f"CommandError: The lock file {lock} is not readable and writable by this user. "
        f"Let this user read and write the file, {fix}"
    )


def test_a_queue_the_backend_does_not_allow_exits_2(tmp_path: Path) -> None:
    run = manage(
        "run_due_tasks",
        "--lock-file",
        str(tmp_path / "l"),
        "--queue",
        "emial",
        env=subprocess_env(),
    )
    assert run.returncode == 2
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .endswith(
            " run_due_tasks: error: --queue 'emial' is not in TASKS['default']['QUEUES'] "
            "(choose from ['default', 'emails', 'reports'], or *)"
        )
    )
