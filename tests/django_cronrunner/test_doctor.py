"""cronrunner_setup: the lines it prints, each check, and a dry run that writes nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, connections
from pytest_django.fixtures import Settings

from django_cronrunner import doctor
from django_cronrunner.models import ScheduleState, TaskRecord
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def setup_output(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("cronrunner_setup", *args, stdout=out, stderr=err)
    except SystemExit as e:
        return int(e.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_prints_the_crontab_line_for_this_project(tmp_path: Path) -> None:
    manage = tmp_path / "site" / "manage.py"
    code, out, _ = setup_output(
        "--manage-py", str(manage), "--max-seconds", "40", "--log", str(tmp_path / "cron.log")
    )
    assert code == 0, out
    line = next(line.strip() for line in out.splitlines() if line.strip().startswith("* * * * *"))
    assert line == (
        f"* * * * * cd {manage.parent} && DJANGO_SETTINGS_MODULE=tests.settings "
        f"{sys.executable} {manage} run_due_tasks --max-seconds 40 >> {tmp_path / 'cron.log'} 2>&1"
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_printed_systemd_units_verify(tmp_path: Path) -> None:
    manage = tmp_path / "manage.py"
    manage.write_text("")
    invocation = doctor.Invocation(
        python=sys.executable,
        manage_py=manage,
        settings_module="tests.settings",
        max_seconds=50,
        log=tmp_path / "x.log",
    )
    for name, text in invocation.systemd_units("root").items():
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", *invocation.systemd_units("root")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_healthy_install_passes_and_the_dry_run_writes_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {
        **default["OPTIONS"],
        "schedules": {"minutely": {"task": "tests.testapp.tasks.add", "cron": "* * * * *"}},
    }
    settings.TASKS = {**settings.TASKS, "default": default}
    tasks.add.enqueue(1, 2)
    tasks.send_email.enqueue("a@example.com")
    code, out, _ = setup_output()
    assert code == 0, out
    assert "OK      The database 'default' is reachable." in out
    assert "OK      django_cronrunner's migrations are applied." in out
    assert "1 due in queue 'default'" in out and "1 due in queue 'emails'" in out
    assert "schedule 'minutely': would start tracking (nothing is backfilled)" in out
    assert ScheduleState.objects.count() == 0
    assert set(TaskRecord.objects.values_list("status", flat=True)) == {"READY"}


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite settings")
def test_sqlite_without_wal_is_a_warning() -> None:
    code, out, _ = setup_output()
    assert code == 0
    assert "WARNING SQLite's journal mode is" in out
    assert "PRAGMA journal_mode=WAL" in out


def test_an_unwritable_lock_directory_is_an_error(settings: Settings, tmp_path: Path) -> None:
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {**default["OPTIONS"], "lock_file": str(tmp_path / "gone" / "x.lock")}
    settings.TASKS = {**settings.TASKS, "default": default}
    code, out, err = setup_output()
    assert code == 1
    assert f"ERROR   The lock file's directory {tmp_path / 'gone'} is missing" in out
    assert "fix the errors above" in err
    assert "Dry run" not in out


def test_a_time_zone_mismatch_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "system_time_zone", lambda: "America/New_York")
    code, out, _ = setup_output()
    assert code == 0
    assert "WARNING cron runs in America/New_York, Django in UTC" in out
    assert doctor.same_zone("Etc/UTC", "UTC") and not doctor.same_zone("UTC", "Europe/London")


def test_system_zone_comes_from_the_system_not_from_django(tmp_path: Path) -> None:
    (tmp_path / "timezone").write_text("Europe/Paris\n")
    assert doctor.system_time_zone(tmp_path) == "Europe/Paris"
    (tmp_path / "localtime").symlink_to("/usr/share/zoneinfo/Asia/Tokyo")
    assert doctor.system_time_zone(tmp_path) == "Asia/Tokyo"


def test_unapplied_migrations_are_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Pending:
        app_label = "django_cronrunner"
        name = "0001_initial"

    monkeypatch.setattr(
        doctor.MigrationExecutor, "migration_plan", lambda self, targets: [(Pending(), False)]
    )
    code, out, _ = setup_output()
    assert code == 1
    assert "ERROR   Migrations not applied: django_cronrunner.0001_initial." in out
    assert "Run `manage.py migrate`." in out


def test_a_database_that_is_down_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any) -> None:
        raise OperationalError("connection refused\n  is the server running?")

    monkeypatch.setattr(type(connections["default"]), "ensure_connection", refuse)
    code, out, _ = setup_output()
    assert code == 1
    assert (
        "ERROR   The database 'default' cannot be reached: connection refused is the server "
        "running?" in out
    )
