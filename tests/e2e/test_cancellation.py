"""Cancelling a task that runs in the child process of a real run: it is killed within
seconds, and the attempt fails with TaskCancelled without a retry."""

from __future__ import annotations

import time
from pathlib import Path

from cronrunner.store import Status
from django_cronrunner import control
from django_cronrunner.models import CANCELLED_PATH, TaskRecord
from tests.e2e.conftest import Starter, wait_for
from tests.e2e.test_timeouts import alive
from tests.testapp import tasks


def test_a_task_in_a_child_process_is_killed_within_seconds(
    start_command: Starter, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    result = tasks.sleep_in_child.using(priority=1).enqueue(str(marker), 60)
    after = tasks.add.enqueue(2, 3)
    run = start_command("--max-seconds", "90", "-v", "2")
    wait_for(lambda: marker.exists() and marker.read_text(), timeout=60)
    pid = int(marker.read_text())
    asked = time.monotonic()
    assert control.cancel(result.id) is control.Cancellation.STOP_REQUESTED
    wait_for(lambda: TaskRecord.objects.get(pk=result.id).status == Status.FAILED, timeout=10)
    assert time.monotonic() - asked < 3
    assert not alive(pid)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    record = TaskRecord.objects.get(pk=result.id)
    assert record.errors[-1]["exception_class_path"] == CANCELLED_PATH
    assert record.attempts == 1
    # The run went on with the next task.
    assert TaskRecord.objects.get(pk=after.id).status == Status.SUCCESSFUL
