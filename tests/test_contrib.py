"""The ready-made deployment files in contrib/ are valid and run the real command."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONTRIB = Path(__file__).resolve().parent.parent / "contrib"


def localise(text: str, site: Path) -> str:
    """Point a contrib file at this checkout instead of /srv/site."""
    return text.replace("/srv/site/.venv/bin/python", sys.executable).replace(
        "/srv/site", str(site)
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_units_verify(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    for unit in ("django-cronrunner.service", "django-cronrunner.timer"):
        text = localise((CONTRIB / "systemd" / unit).read_text(), site)
        text = text.replace("User=www-data", f"User={os.getuid()}")
        text = text.replace("Group=www-data", f"Group={os.getgid()}")
        (tmp_path / unit).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "django-cronrunner.service", "django-cronrunner.timer"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line for line in (result.stdout + result.stderr).splitlines() if "django-cronrunner" in line
    ]
    assert result.returncode == 0 and problems == [], result.stdout + result.stderr


def test_systemd_units_have_the_settings_the_readme_promises() -> None:
    service = (CONTRIB / "systemd" / "django-cronrunner.service").read_text()
    timer = (CONTRIB / "systemd" / "django-cronrunner.timer").read_text()
    assert "Type=oneshot" in service
    stop_timeout = int(service.split("TimeoutStopSec=")[1].split()[0])
    budget = int(service.split("--max-seconds ")[1].split()[0])
    assert stop_timeout > budget
    for line in ("OnCalendar=minutely", "Persistent=true", "AccuracySec=1s"):
        assert line in timer


def test_crontab_line_is_one_valid_cron_entry() -> None:
    from croniter import croniter

    lines = [
        line
        for line in (CONTRIB / "crontab" / "cronrunner.crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(lines) == 1
    fields = lines[0].split()
    assert croniter.is_valid(" ".join(fields[:5]))
    assert "run_due_tasks" in fields and "--max-seconds" in fields


def crontab_command() -> str:
    """Return the command part (after the five time fields) of contrib's crontab line."""
    line = next(
        line
        for line in (CONTRIB / "crontab" / "cronrunner.crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return line.split(maxsplit=5)[5]


def stand_in_python(site: Path) -> None:
    """Put an interpreter in site/.venv that records how it was called, from where, with which
    environment, instead of running anything."""
    (site / ".venv" / "bin").mkdir(parents=True)
    fake_python = site / ".venv" / "bin" / "python"
    fake_python.write_text('#!/bin/sh\necho "cwd=$(pwd) SETTING=$SETTING args=$*"\n')
    fake_python.chmod(0o755)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell")
def test_crontab_line_creates_its_log_directory_under_crons_environment(tmp_path: Path) -> None:
    site = tmp_path / "site"
    stand_in_python(site)
    command = crontab_command().replace("/srv/site", str(site))
    assert "%" not in command  # cron would cut the line there
    cron_environment = {"PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "HOME": str(tmp_path)}
    for _ in range(2):
        subprocess.run(["/bin/sh", "-c", command], env=cron_environment, check=True, timeout=30)
    log = site / "logs" / "cronrunner.log"
    assert log.read_text().splitlines() == 2 * [
        f"cwd={site} SETTING= args=manage.py run_due_tasks --max-seconds 50"
    ]


@pytest.mark.skipif(
    shutil.which("logrotate") is None and os.environ.get("CI") != "true",
    reason="logrotate not installed (scripts/test.sh installs it under CI)",
)
def test_logrotate_config_rotates_the_log_in_place(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "logs").mkdir(parents=True)
    log = site / "logs" / "cronrunner.log"
    log.write_text("2026-11-22T23:10:01+00:00 run_due_tasks: batch finished: 1 run\n")
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    config = (CONTRIB / "crontab" / "logrotate.conf").read_text()
    assert "su www-data www-data" in config
    config = config.replace("/srv/site", str(site)).replace("www-data www-data", f"{user} {group}")
    (tmp_path / "logrotate.conf").write_text(config)
    result = subprocess.run(
        [
            "logrotate",
            "--state",
            str(tmp_path / "state"),
            "--force",
            str(tmp_path / "logrotate.conf"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert log.read_text() == ""  # copytruncate: the same file, emptied, keeps being appended to
    assert "batch finished" in (site / "logs" / "cronrunner.log.1").read_text()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell script")
def test_wrapper_script_runs_the_command_with_the_site_environment(tmp_path: Path) -> None:
    site = tmp_path / "site"
    stand_in_python(site)
    (site / ".env").write_text("SETTING=from-env-file\n")
    result = subprocess.run(
        ["sh", str(CONTRIB / "crontab" / "run-due-tasks.sh"), "--max-tasks", "5"],
        env={"PATH": os.environ["PATH"], "SITE_DIR": str(site)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout.strip() == (
        f"cwd={site} SETTING=from-env-file "
        "args=manage.py run_due_tasks --max-seconds 50 --max-tasks 5"
    )


def test_kubernetes_cronjob_forbids_overlap() -> None:
    yaml = pytest.importorskip("yaml")
    job = yaml.safe_load((CONTRIB / "kubernetes" / "cronjob.yaml").read_text())
    assert job["kind"] == "CronJob"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["python", "manage.py", "run_due_tasks"]
