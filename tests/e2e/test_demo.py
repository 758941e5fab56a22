"""The demo project that `scripts/demo.sh` shows: its commands, run as a new user would."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from django_cronrunner.compat import NATIVE_TASKS

EXAMPLE = Path(__file__).resolve().parents[2] / "example"

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="the demo project runs on its own SQLite database"
    ),
    pytest.mark.skipif(not NATIVE_TASKS, reason="the demo project is written for Django 6"),
]


def manage(*args: str, var_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEMO_VAR_DIR": str(var_dir)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_demo_enqueues_runs_and_reads_back_real_tasks(tmp_path: Path) -> None:
    manage("migrate", "--verbosity", "0", var_dir=tmp_path)
    enqueued = manage("enqueue_demo_tasks", var_dir=tmp_path).stdout
    assert enqueued.count("enqueued ") == 5
    run = manage("run_due_tasks", "--max-seconds", "20", "-v", "2", var_dir=tmp_path).stdout
    assert "Subject: Your order #1001" in run  # the console email backend printed the email
    assert "batch finished: 4 run (3 succeeded, 1 failed)" in run
    results = manage("show_demo_results", var_dir=tmp_path).stdout.splitlines()
    by_task = {line.split()[0]: line for line in results}
    assert "SUCCESSFUL" in by_task["make_thumbnail"]
    assert "FAILED" in by_task["charge_card"] and "card declined" in by_task["charge_card"]
    assert "READY" in by_task["send_review_request"]
    assert (tmp_path / "thumbnails" / "product-7.pgm").read_text().startswith("P2\n16 12\n")
    assert list((tmp_path / "reports").glob("sales-*.json"))


DEMO = EXAMPLE.parent / "scripts" / "demo.sh"


def run_demo(in_terminal: bool) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(DEMO)]
    if in_terminal:  # script(1) gives it a terminal of its own and copies what it shows to a pipe
        command = ["script", "--quiet", "--return", "/dev/null", "--command", shlex.join(command)]
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=True)


@pytest.mark.field
def test_the_demo_prints_escape_codes_only_to_a_terminal() -> None:
    piped = run_demo(in_terminal=False)
    assert "==> python manage.py run_due_tasks --max-seconds 20 -v 2" in piped.stdout
    assert "batch finished: 4 run (3 succeeded, 1 failed)" in piped.stdout
    assert "\x1b" not in piped.stdout + piped.stderr
    shown = run_demo(in_terminal=True).stdout.replace("\r\n", "\n")  # a terminal's line ends
    headings = [line for line in shown.split("\n") if "==> " in line]
    assert len(headings) == 5
    assert all(line.startswith("\x1b[1m==> ") and line.endswith("\x1b[0m") for line in headings)
