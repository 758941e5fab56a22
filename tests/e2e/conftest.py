"""Run the real `manage.py run_due_tasks` in subprocesses against the test database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

REPO = Path(__file__).resolve().parents[2]

Runner = Callable[..., subprocess.CompletedProcess[str]]
Starter = Callable[..., "subprocess.Popen[str]"]


def subprocess_env(**overrides: str) -> dict[str, str]:
    """Return an environment whose settings point at this test run's database."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(REPO)}
    name = str(connection.settings_dict["NAME"])
    key = {
        "sqlite": "CRONRUNNER_SQLITE_NAME",
        "postgresql": "CRONRUNNER_PG_NAME",
        "mysql": "CRONRUNNER_MYSQL_NAME",
    }[connection.vendor]
    env[key] = name
    env["CRONRUNNER_TEST_DB"] = {"mysql": "mariadb"}.get(connection.vendor, connection.vendor)
    env.update(overrides)
    return env


def file_modes_enforced() -> list[str]:
    """Return a command prefix under which file modes bind this user, root included."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root ignores file modes, and setpriv (util-linux) is missing")
    # Without these capabilities root is refused what the modes refuse it.
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


def wait_for(predicate: Callable[[], object], timeout: float = 30) -> None:
    """Wait until `predicate()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "django", "run_due_tasks", *args]


@pytest.fixture
def lock_file(tmp_path: Path) -> Path:
    return tmp_path / "run.lock"


@pytest.fixture
def run_command(transactional_db: None, lock_file: Path) -> Runner:
    """Run run_due_tasks to completion with this test's lock file unless one is given."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
        if "--lock-file" not in args:
            args = ("--lock-file", str(lock_file), *args)
        return subprocess.run(
            command(*args),
            cwd=REPO,
            env=env or subprocess_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def start_command(transactional_db: None, lock_file: Path) -> Iterator[Starter]:
    """Start run_due_tasks in the background; the caller waits for or kills it."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        if "--lock-file" not in args:
            args = ("--lock-file", str(lock_file), *args)
        process = subprocess.Popen(
            command(*args),
            cwd=REPO,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()
