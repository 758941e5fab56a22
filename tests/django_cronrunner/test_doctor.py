"""cronrunner_setup: the lines it prints, each check, and a dry run that writes nothing."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, connections
from pytest_django.fixtures import Settings

from django_cronrunner.models import ScheduleState, TaskDuration, TaskRecord
from django_cronrunner.operations import doctor, setup_lines
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def in_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run setup from a project's directory, where it finds ./manage.py."""
    (tmp_path / "manage.py").write_text("")
    monkeypatch.chdir(tmp_path)


def setup_output(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("cronrunner_setup", *args, stdout=out, stderr=err)
    except SystemExit as e:
        return int(e.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def project(tmp_path: Path) -> Path:
    """Return the manage.py of a project in `tmp_path`."""
    manage = tmp_path / "site" / "manage.py"
    manage.parent.mkdir()
    manage.write_text("")
    return manage


def test_prints_the_crontab_line_for_this_project(tmp_path: Path) -> None:
    manage = project(tmp_path)
    code, out, _ = setup_output(
        "--manage-py", str(manage), "--max-seconds", "40", "--log", str(tmp_path / "cron.log")
    )
    assert code == 0, out
    line = next(line.strip() for line in out.splitlines() if line.strip().startswith("* * * * *"))
    assert line == (
        f"* * * * * cd {manage.parent} && mkdir -p {tmp_path} && "
        f"DJANGO_SETTINGS_MODULE=tests.settings {setup_lines.interpreter_path(sys.executable)} "
        f"{manage} run_due_tasks --max-seconds 40 >> {tmp_path / 'cron.log'} 2>&1"
    )


def test_the_line_creates_the_default_log_directory_next_to_manage_py(tmp_path: Path) -> None:
    manage = project(tmp_path)
    code, out, _ = setup_output("--manage-py", str(manage))
    assert code == 0, out
    log = tmp_path / "site" / "logs" / "cronrunner.log"
    assert f"&& mkdir -p {log.parent} && " in out and f">> {log} 2>&1" in out
    assert f"OK      The log {log} can be created (the line creates {log.parent})." in out


def test_paths_in_the_line_are_normalised_and_the_interpreter_stays_in_its_venv(
    tmp_path: Path,
) -> None:
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(sys.executable)
    (tmp_path / "link").symlink_to(tmp_path / "venv")
    site = tmp_path / "site"
    site.mkdir()
    given = f"{site}/../link/bin/python"
    assert setup_lines.interpreter_path(given) == str(venv_bin / "python")


def test_percent_signs_are_escaped_for_cron() -> None:
    invocation = setup_lines.Invocation(
        python="/srv/venv/bin/python",
        manage_py=Path("/srv/site 100%/manage.py"),
        settings_module="site.settings",
        max_seconds=50,
        log=Path("/srv/site 100%/logs/cron.log"),
    )
    line = invocation.crontab_line()
    assert "%" not in line.replace("\\%", "")
    assert line.startswith("* * * * * cd '/srv/site 100\\%' && mkdir -p '/srv/site 100\\%/logs' ")


def test_a_log_under_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notadir").write_text("")
    log = tmp_path / "notadir" / "logs" / "cron.log"
    finding = doctor.check_log(log)
    assert finding.level is doctor.Level.ERROR
    assert finding.message == (
        f"The log {log} cannot be created: {tmp_path / 'notadir'} is not a directory "
        f"{getpass.getuser()} can write."
    )
    assert finding.hint == (
        f"Run `sudo mkdir -p {log.parent} && sudo chown {getpass.getuser()} {log.parent}`, "
        f"or pass --log with a file {getpass.getuser()} can write."
    )


def test_a_log_directory_this_user_cannot_write_is_an_error_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    real_access = os.access
    # root may write anywhere whatever the mode says: ask os.access as another user would.
    monkeypatch.setattr(
        doctor.os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode)
    )
    code, out, _ = setup_output("--log", str(locked / "logs" / "cron.log"))
    assert code == 1
    user = getpass.getuser()
    assert (
        f"ERROR   The log {locked / 'logs' / 'cron.log'} cannot be created: {locked} is not a "
        f"directory {user} can write." in out
    )
    assert f"Run `sudo mkdir -p {locked / 'logs'} && sudo chown {user} {locked / 'logs'}`" in out


def test_an_existing_log_that_cannot_be_written_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "cron.log"
    log.write_text("")
    monkeypatch.setattr(doctor.os, "access", lambda path, mode: Path(path) != log)
    finding = doctor.check_log(log)
    assert finding.level is doctor.Level.ERROR
    assert finding.message == f"The log {log} is not writable by {getpass.getuser()}."
    assert finding.hint.startswith(f"Run `sudo chown {getpass.getuser()} {log}`")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_printed_systemd_units_verify(tmp_path: Path) -> None:
    manage = tmp_path / "manage.py"
    manage.write_text("")
    invocation = setup_lines.Invocation(
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
    assert "OK      The database 'default' is reachable and writable." in out
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
    assert f"ERROR   The lock file's directory {tmp_path / 'gone'} does not exist." in out
    assert "Create the directory, or give --lock-file (or OPTIONS['lock_file'])" in out
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


READ_ONLY = {
    "sqlite": ("PRAGMA query_only = ON", "PRAGMA query_only = OFF"),
    "postgresql": (
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    ),
    "mysql": ("SET SESSION TRANSACTION READ ONLY", "SET SESSION TRANSACTION READ WRITE"),
}


@pytest.mark.django_db(transaction=True)
def test_a_database_that_cannot_be_written_is_an_error_not_reachable() -> None:
    read_only, read_write = READ_ONLY[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(read_only)
    try:
        code, out, _ = setup_output()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(read_write)
    assert code == 1
    assert "The database 'default' is reachable." not in out
    assert "OK      The database 'default' is reachable and writable." not in out
    line = next(line for line in out.splitlines() if "The database 'default'" in line)
    assert line.startswith("  ERROR   The database 'default' is reachable but cannot be written: ")
    assert TaskDuration.objects.count() == 0


def test_the_write_fix_names_chown_for_another_owner_and_chmod_for_a_missing_bit(
    tmp_path: Path,
) -> None:
    mine, locked = tmp_path / "mine", tmp_path / "locked"
    mine.write_text("")
    locked.write_text("")
    locked.chmod(0o444)
    assert doctor.grant_write(mine) == ""
    assert doctor.grant_write(locked, mine) == f"chmod u+w {locked}"
    if os.geteuid() == 0:
        os.chown(mine, 65534, 65534)  # nobody's
        assert doctor.grant_write(mine, locked) == (
            f"sudo chown {getpass.getuser()} {mine} && chmod u+w {locked}"
        )


def test_a_manage_py_that_is_not_there_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As when run with django-admin outside the project: ./manage.py is not there.
    (tmp_path / "manage.py").unlink()
    monkeypatch.setattr(sys, "argv", ["django-admin", "cronrunner_setup"])
    code, out, err = setup_output()
    assert code == 1
    assert (
        f"ERROR   There is no {tmp_path / 'manage.py'}: the lines above would run nothing." in out
    )
    assert "or pass --manage-py with the path of its manage.py." in out
    assert "fix the errors above" in err


def test_a_manage_py_option_that_is_not_a_file_is_an_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"--manage-py: '.*nowhere.*' is not a file"):
        call_command("cronrunner_setup", "--manage-py", str(tmp_path / "nowhere" / "manage.py"))
