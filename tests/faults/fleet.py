"""Hosts of a fleet for the field tests: runs with a faked wall clock, and the database's time."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection

from django_cronrunner.models import TaskRecord
from django_cronrunner.storage.database_clock import read_database_time
from tests.e2e.conftest import REPO, command, subprocess_env

#: Hosts minutes apart, as the issue saw them.
SKEW = timedelta(minutes=5)

ONLY_SERVERS = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite has one host: no clocks to differ, no link to cut"
)


def require_tool(name: str) -> str:
    """Return the path of `name`; skip without it, except under CI=true, where it must exist."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/test.sh installs it under CI)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def database_time() -> datetime:
    now = read_database_time(connection.alias)
    assert now is not None
    return now


def host_env(**overrides: str) -> dict[str, str]:
    """Return a run's environment: this test database, the fleet's settings."""
    return subprocess_env(DJANGO_SETTINGS_MODULE="tests.fleet_settings", **overrides)


def on_host(skew: timedelta, argv: list[str]) -> list[str]:
    """Return `argv` run on a host whose wall clock is `skew` off. Only the wall clock: a real
    host with a wrong clock still measures intervals right (its monotonic clock is not set)."""
    if not skew:
        return argv
    offset = f"{int(skew.total_seconds()):+d}s"
    # A faked monotonic clock would also hang every timed wait (threading.Event.wait).
    wall_only = "FAKETIME_DONT_FAKE_MONOTONIC=1"
    return ["env", wall_only, require_tool("faketime"), "-f", offset, *argv]


def host_run(
    skew: timedelta, lock: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run one batch to its end on a host `skew` off, with its own lock file."""
    argv = on_host(skew, command("--lock-file", str(lock), *args))
    return subprocess.run(
        argv, cwd=REPO, env=env or host_env(), capture_output=True, text=True, timeout=timeout
    )


HostStarter = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def host_start() -> Iterator[HostStarter]:
    """Start batches in the background, each on a host `skew` off; kill what is left at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(
        skew: timedelta, lock: Path, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        argv = on_host(skew, command("--lock-file", str(lock), *args))
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env or host_env(),
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


def enqueue_now(task_path: str, **kwargs: object) -> TaskRecord:
    """Store a task due now by the database's clock, as enqueue() would."""
    now = database_time()
    return TaskRecord.objects.create(
        backend_name="default", task_path=task_path, kwargs=kwargs, enqueued_at=now, due_at=now
    )
