"""The database connection cut mid-batch, and a PostgreSQL restart: nothing is lost."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from django_cronrunner.models import TaskRecord
from tests.e2e.conftest import Runner, Starter, wait_for
from tests.testapp.db_faults import end_connections

pytestmark = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="a SQLite file has no connection to cut"
)

TASKS = 300


def enqueue_journal(out: Path) -> None:
    now = timezone.now()
    TaskRecord.objects.bulk_create(
        TaskRecord(
            backend_name="default",
            task_path="tests.testapp.tasks.append_line",
            kwargs={"path": str(out), "line": str(n), "sleep": 0.01},
            enqueued_at=now,
            due_at=now,
        )
        for n in range(TASKS)
    )


def executions(out: Path) -> list[str]:
    return out.read_text().splitlines() if out.exists() else []


def assert_all_ran(run_command: Runner, out: Path, faults: int) -> None:
    # A cut can fall between a claim's commit and its answer: the next run hands those back.
    after = run_command()
    assert after.returncode == 0, after.stderr
    assert TaskRecord.objects.filter(status="SUCCESSFUL").count() == TASKS
    done = executions(out)
    assert set(done) == {str(n) for n in range(TASKS)}
    assert len(done) - TASKS <= faults


def test_connections_cut_mid_batch(
    start_command: Starter, run_command: Runner, tmp_path: Path
) -> None:
    out = tmp_path / "executions.txt"
    enqueue_journal(out)
    runner = start_command("--max-seconds", "120", "--traceback")
    cuts = 0
    for target in (40, 80, 120, 160, 200):
        wait_for(lambda n=target: len(executions(out)) >= n or runner.poll() is not None)
        if runner.poll() is not None:
            break
        cuts += end_connections() > 0
    _, stderr = runner.communicate(timeout=120)
    assert runner.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert cuts >= 3
    assert_all_ran(run_command, out, cuts)


def postgresql_cluster() -> list[str] | None:
    """Return the command that restarts the local PostgreSQL cluster, if we may run it."""
    if connection.vendor != "postgresql" or os.geteuid() != 0:
        return None
    if connection.settings_dict["HOST"] not in ("127.0.0.1", "localhost", ""):
        return None
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return None
    (version,) = sorted(os.listdir("/etc/postgresql"))[-1:]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"]


@pytest.mark.server_restart
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="restarts the local PostgreSQL server"
)
def test_postgresql_restart_mid_batch(
    start_command: Starter, run_command: Runner, tmp_path: Path
) -> None:
    restart = postgresql_cluster()
    if restart is None:
        if os.environ.get("CI") == "true":
            pytest.fail("under CI=true this test must restart PostgreSQL (root, pg_ctlcluster)")
        pytest.skip("needs root and a local pg_ctlcluster")
    out = tmp_path / "executions.txt"
    enqueue_journal(out)
    runner = start_command("--max-seconds", "120")
    wait_for(lambda: len(executions(out)) >= 50 or runner.poll() is not None)
    assert runner.poll() is None, "the run finished before the restart"
    started = time.monotonic()
    subprocess.run(restart, check=True, capture_output=True, timeout=60)
    print(f"PostgreSQL restarted in {time.monotonic() - started:.1f}s")
    connection.close()  # ours died with the server too
    stdout, stderr = runner.communicate(timeout=120)
    assert runner.returncode == 0, stderr
    assert "stopped: drained" in stdout
    assert_all_ran(run_command, out, 1)
