"""The real command in subprocesses: order, budget, lock, concurrency, crashes, bad input."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from django_cronrunner.models import BatchRun, TaskRecord
from tests.e2e.conftest import Runner, Starter, wait_for
from tests.testapp import tasks

SERVER_ONLY = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="several hosts share PostgreSQL or MariaDB"
)


def test_priority_order_deferred_and_failures(run_command: Runner, tmp_path: Path) -> None:
    out = tmp_path / "order.txt"
    tasks.append_line.enqueue(str(out), "low")
    tasks.append_line.using(priority=50).enqueue(str(out), "urgent")
    tasks.append_line.using(priority=10).enqueue(str(out), "high")
    later = tasks.append_line.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(
        str(out), "later"
    )
    failing = tasks.fail.enqueue("card declined")
    result = run_command("-v", "2")
    assert result.returncode == 0, result.stderr
    assert out.read_text().splitlines() == ["urgent", "high", "low"]
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    assert lines[-1].endswith("stopped: drained")
    assert "4 run (3 succeeded, 1 failed)" in lines[-1]
    assert f"task {failing.id} tests.testapp.tasks.fail FAILED (builtins.ValueError)" in (
        result.stdout
    )
    assert TaskRecord.objects.get(pk=later.id).status == "READY"
    assert "card declined" not in result.stdout  # no task arguments in the log


def test_budget_stops_the_run_and_the_next_run_continues(
    run_command: Runner, tmp_path: Path
) -> None:
    out = tmp_path / "slow.txt"
    for n in range(20):
        tasks.append_line.enqueue(str(out), str(n), sleep=0.2)
    started = time.monotonic()
    result = run_command("--max-seconds", "2")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "stopped: budget spent" in result.stdout
    done = len(out.read_text().splitlines())
    # About ten tasks fit in the budget, and the batch ends within it, give or take a task.
    assert 8 <= done <= 11
    batch = BatchRun.objects.get()
    assert batch.duration < 3, batch.duration
    # The process ends soon after: Django's start-up and exit, however loaded the machine, and no
    # waiting for anything once the budget is spent.
    assert elapsed < batch.duration + 8, elapsed
    assert TaskRecord.objects.filter(status="READY").count() == 20 - done
    assert TaskRecord.objects.filter(status="RUNNING").count() == 0
    assert run_command("--max-seconds", "30").returncode == 0
    assert sorted(map(int, out.read_text().splitlines())) == list(range(20))


def test_a_second_run_with_the_same_lock_exits_at_once(
    start_command: Starter, run_command: Runner, tmp_path: Path
) -> None:
    out, hold = tmp_path / "long.txt", tmp_path / "hold"
    hold.touch()
    tasks.one_per_tenant.enqueue(1, str(out), hold=str(hold))  # runs until `hold` is removed
    first = start_command()
    wait_for(lambda: out.exists())
    second = run_command("-v", "0")
    # The second run ended while the first still held the lock: it never waited for it, however
    # long a loaded machine takes to start Django.
    assert first.poll() is None
    hold.unlink()
    assert second.returncode == 0, second.stderr
    assert "batch skipped: Another run holds" in second.stdout
    assert f"pid {first.pid}" in second.stdout
    assert first.wait(timeout=30) == 0
    reasons = sorted(BatchRun.objects.values_list("stop_reason", flat=True))
    assert reasons == ["drained", "lock held"]


@SERVER_ONLY
def test_four_runners_run_two_thousand_tasks_exactly_once(
    start_command: Starter, tmp_path: Path
) -> None:
    out = tmp_path / "once.txt"
    now = timezone.now()
    records = [
        TaskRecord(
            backend_name="default",
            task_path="tests.testapp.tasks.append_line",
            kwargs={"path": str(out), "line": str(n)},
            enqueued_at=now,
            due_at=now,
        )
        for n in range(2000)
    ]
    TaskRecord.objects.bulk_create(records, batch_size=500)
    runners = [
        start_command("--lock-file", str(tmp_path / f"host-{n}.lock"), "--max-seconds", "240")
        for n in range(4)
    ]
    for runner in runners:
        stdout, stderr = runner.communicate(timeout=300)
        assert runner.returncode == 0, stderr
        assert "stopped: drained" in stdout
    lines = out.read_text().splitlines()
    assert len(lines) == 2000
    assert sorted(map(int, lines)) == list(range(2000))
    assert set(TaskRecord.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
    per_runner = list(BatchRun.objects.values_list("tasks_run", flat=True))
    assert sum(per_runner) == 2000 and len(per_runner) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-seconds", "-1"], "argument --max-seconds: '-1' must be a positive number"),
        (["--max-tasks", "x"], "argument --max-tasks: 'x' is not a whole number"),
        (["--queue", ""], "argument --queue: '' contains an empty queue name"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_invalid_arguments_exit_2(run_command: Runner, args: list[str], message: str) -> None:
    result = run_command(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_the_options(run_command: Runner) -> None:
    result = run_command("--help")
    assert result.returncode == 0
    for option in ("--max-seconds", "--queue", "--backend", "--lock-file", "--max-tasks"):
        assert option in result.stdout
