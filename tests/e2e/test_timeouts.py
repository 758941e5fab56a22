"""Timeouts: tasks with one run in a child process that is stopped when the time is up."""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_cronrunner.models import TaskRecord
from tests.e2e.conftest import Runner, Starter, subprocess_env, wait_for
from tests.testapp import tasks

DURATION = re.compile(r"task (\S+) \S+ (?:SUCCESSFUL|FAILED[^\n]*?) in ([0-9.]+)s")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listening socket that accepts connections and never sends a byte."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def alive(pid: int) -> bool:
    """Say whether the process runs (a zombie waiting for its reaper does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def durations(output: str) -> dict[str, float]:
    return {task_id: float(seconds) for task_id, seconds in DURATION.findall(output)}


def test_stuck_tasks_are_stopped_and_the_batch_goes_on(
    run_command: Runner, tmp_path: Path, silent_port: int
) -> None:
    spinning = tasks.spin.using(priority=3).enqueue(str(tmp_path / "spin.pid"))
    sleeping = tasks.nap.using(priority=2).enqueue(str(tmp_path / "nap.pid"), 60)
    blocked = tasks.wait_on_socket.using(priority=1).enqueue(silent_port)
    normal = tasks.add.enqueue(2, 2)
    started = time.monotonic()
    result = run_command("-v", "2")
    assert result.returncode == 0, result.stderr
    taken = durations(result.stdout)
    for stuck in (spinning, blocked):
        record = TaskRecord.objects.get(pk=stuck.id)
        assert record.status == "FAILED"
        assert record.errors[-1]["exception_class_path"] == ("django_cronrunner.errors.TaskTimeout")
        assert "ran longer than its timeout of 1s" in record.errors[-1]["traceback"]
        # Within about a second of the limit, a fresh child's start-up included.
        assert 1.0 <= taken[stuck.id] < 3.5, taken
    # The sleeper may try twice (max_attempts=2, no delay): both attempts time out.
    nap = TaskRecord.objects.get(pk=sleeping.id)
    assert nap.status == "FAILED" and len(nap.errors) == 2
    # The database connection of the run stayed healthy: the plain task ran after them.
    assert TaskRecord.objects.get(pk=normal.id).return_value == 4
    assert time.monotonic() - started < 25
    # Nothing the run started is left running.
    for name in ("spin.pid", "nap.pid"):
        assert not alive(int((tmp_path / name).read_text()))


def test_tasks_with_a_timeout_succeed_in_a_child_process(run_command: Runner) -> None:
    first = tasks.double_in_child.enqueue(21)
    second = tasks.double_in_child.enqueue(5)
    died = tasks.exit_child.enqueue()
    result = run_command("-v", "2")
    assert result.returncode == 0, result.stderr
    one = TaskRecord.objects.get(pk=first.id).return_value
    two = TaskRecord.objects.get(pk=second.id).return_value
    assert (one["double"], two["double"]) == (42, 10)
    assert one["pid"] == two["pid"]  # one child serves the run
    exited = TaskRecord.objects.get(pk=died.id)
    assert exited.status == "FAILED"
    assert exited.errors[-1]["exception_class_path"] == "django_cronrunner.errors.TaskProcessDied"
    assert "exited (status 3)" in exited.errors[-1]["traceback"]


def test_a_slow_child_start_up_does_not_count_against_the_timeout(run_command: Runner) -> None:
    quick = tasks.quick_in_child.enqueue()
    # Each process, the child included, takes 1.5 s to start: longer than the 1 s timeout.
    result = run_command("-v", "2", env=subprocess_env(CRONRUNNER_TEST_SLOW_START="1.5"))
    assert result.returncode == 0, result.stderr
    record = TaskRecord.objects.get(pk=quick.id)
    assert record.status == "SUCCESSFUL", record.errors


def test_a_child_that_exits_on_start_up_fails_the_attempt(run_command: Runner) -> None:
    quick = tasks.quick_in_child.enqueue()
    after = tasks.add.enqueue(1, 1)
    result = run_command("-v", "2", env=subprocess_env(CRONRUNNER_TEST_CHILD_EXITS="1"))
    assert result.returncode == 0, result.stderr
    record = TaskRecord.objects.get(pk=quick.id)
    assert record.status == "FAILED"
    assert record.errors[-1]["exception_class_path"] == "django_cronrunner.errors.TaskProcessDied"
    assert (
        "exited, or was not ready within 60s of starting (exit status 3)"
        in (record.errors[-1]["traceback"])
    )
    # The run itself went on.
    assert TaskRecord.objects.get(pk=after.id).return_value == 2


def test_the_child_dies_with_its_run(start_command: Starter, tmp_path: Path) -> None:
    pid_file = tmp_path / "nap.pid"
    tasks.nap.enqueue(str(pid_file), 60)
    runner = start_command()
    wait_for(lambda: pid_file.exists() and pid_file.read_text())
    child = int(pid_file.read_text())
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)

    wait_for(lambda: not alive(child), timeout=5)
