"""What a run writes on a new project (DEBUG on, no LOGGING): to a pipe, as under cron, and
to a terminal, where a progress line is redrawn."""

from __future__ import annotations

import errno
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, subprocess_env
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

CLEAR_LINE = "\r\x1b[K"


def enqueue_some() -> list[str]:
    ids = [tasks.add.enqueue(n, n).id for n in range(3)]
    ids.append(tasks.fail.enqueue("card declined").id)
    ids.append(tasks.quick_in_child.enqueue().id)
    return ids


def command(tmp_path: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "django",
        "run_due_tasks",
        "--lock-file",
        str(tmp_path / "l"),
        *args,
    ]


def run_piped(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(tmp_path, *args),
        cwd=REPO,
        env=subprocess_env(DJANGO_SETTINGS_MODULE="tests.e2e.debug_settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_one_summary_line_at_verbosity_1(tmp_path: Path) -> None:
    enqueue_some()
    result = run_piped(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert "batch finished: 5 run (4 succeeded, 1 failed)" in line


def test_a_line_per_task_at_verbosity_2(tmp_path: Path) -> None:
    ids = enqueue_some()
    result = run_piped(tmp_path, "-v", "2")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 6
    assert [line.split(" task ", 1)[1].split()[0] for line in lines[:5]] == ids
    assert "batch finished" in lines[5]


def test_djangos_own_task_lines_at_verbosity_3(tmp_path: Path) -> None:
    # What a new project would print for each task (DEBUG on): kept for -v 3.
    ids = enqueue_some()
    result = run_piped(tmp_path, "-v", "3")
    assert result.returncode == 0, result.stderr
    for task_id in ids[:4]:
        assert f"Task id={task_id} path=" in result.stderr
    assert "ValueError: card declined" in result.stderr


def run_in_terminal(tmp_path: Path, *args: str) -> str:
    """Run with stdout and stderr on a pseudo-terminal; return everything it showed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command(tmp_path, *args),
        cwd=REPO,
        env=subprocess_env(DJANGO_SETTINGS_MODULE="tests.e2e.debug_settings"),
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError as e:  # Linux ends a pty whose last writer closed with EIO
            if e.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.wait(timeout=60) == 0
    return shown.decode().replace("\r\n", "\n")


def test_in_a_terminal_log_records_and_prints_never_land_on_the_progress_line(
    tmp_path: Path,
) -> None:
    enqueue_some()
    for n in range(3):
        tasks.warn.using(priority=-n).enqueue(f"number {n}")
        tasks.shout.using(priority=-n).enqueue(f"number {n}", to_stderr=n == 1)
    shown = run_in_terminal(tmp_path)
    assert "Task id=" not in shown  # django.tasks' own lines stay out of -v 1
    assert "run, 1 failed" in shown  # the progress line was drawn
    warnings = [match.start() for match in re.finditer("(warned|printed): number", shown)]
    assert len(warnings) == 6
    for start in warnings:
        # Each record starts on a line of its own: at a new line or where the progress line
        # was just cleared, never after progress text.
        before = shown[:start]
        assert before.endswith(("\n", CLEAR_LINE)) or before == "", repr(shown[start - 80 : start])
    lines = shown.split("\n")
    assert lines[-1] == ""
    assert lines[-2].startswith(CLEAR_LINE) or "batch finished" in lines[-2]
    assert "batch finished: 11 run (10 succeeded, 1 failed)" in lines[-2]
