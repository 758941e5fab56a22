"""The ready-made deployment files in contrib/ are valid and run the real command."""

from __future__ import annotations

import os
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


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell script")
def test_wrapper_script_runs_the_command_with_the_site_environment(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / ".venv" / "bin").mkdir(parents=True)
    # A stand-in interpreter that records how it was called, from where, with which environment.
    fake_python = site / ".venv" / "bin" / "python"
    fake_python.write_text('#!/bin/sh\necho "cwd=$(pwd) SETTING=$SETTING args=$*"\n')
    fake_python.chmod(0o755)
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
