"""cronrunner_setup, run as a user would, on a SQLite database it can read but not write."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from django.db import connection

from tests.e2e.conftest import REPO, file_modes_enforced

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="a read-only SQLite file of its own"
)


def manage(
    *args: str, database: str, prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(REPO),
        "CRONRUNNER_TEST_DB": "sqlite",
        "CRONRUNNER_SQLITE_NAME": database,
    }
    return subprocess.run(
        [*prefix, sys.executable, "-m", "django", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_read_only_database_is_not_reported_as_fine(tmp_path: Path) -> None:
    database = tmp_path / "site.sqlite3"
    migrated = manage("migrate", "--verbosity", "0", database=str(database))
    assert migrated.returncode == 0, migrated.stderr
    database.chmod(0o444)
    result = manage("cronrunner_setup", database=str(database), prefix=file_modes_enforced())
    assert result.returncode == 1, result.stdout
    checks = result.stdout.split("Checks:", 1)[1]
    assert "OK      The database 'default' is reachable" not in checks
    assert (
        "ERROR   The database 'default' is reachable but cannot be written: attempt to write a "
        "readonly database" in checks
    )
    # The file is this user's: what it lacks is the write bit, not an owner.
    assert f"SQLite creates its journal: `chmod u+w {database}`;" in checks
    assert "Dry run" not in result.stdout
    assert "fix the errors above" in result.stderr


def test_a_read_only_connection_is_not_reported_as_fine(tmp_path: Path) -> None:
    database = tmp_path / "site.sqlite3"
    assert manage("migrate", "--verbosity", "0", database=str(database)).returncode == 0
    # SQLite's own read-only mode, which holds for root too.
    result = manage("cronrunner_setup", database=f"file:{database}?mode=ro")
    assert result.returncode == 1, result.stdout
    assert (
        "both are writable by their modes, so check that the filesystem is not mounted "
        "read-only; a file: URI in NAME must not say mode=ro." in result.stdout
    )


def test_a_writable_database_is_reported_writable_and_left_unchanged(tmp_path: Path) -> None:
    database = tmp_path / "site.sqlite3"
    assert manage("migrate", "--verbosity", "0", database=str(database)).returncode == 0
    before = database.read_bytes()
    (tmp_path / "manage.py").write_text("")
    result = manage(
        "cronrunner_setup", "--manage-py", str(tmp_path / "manage.py"), database=str(database)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK      The database 'default' is reachable and writable." in result.stdout
    assert database.read_bytes() == before
