"""Signals to a run: kill -9, SIGTERM, a second SIGTERM, and SIGSTOP past the lease."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from django_cronrunner.models import TaskRecord
from tests.e2e.conftest import Runner, Starter, wait_for
from tests.testapp import tasks


def interrupt_mid_task(start_command: Starter, tmp_path: Path, how: signal.Signals) -> str:
    """Start a run on a task that sleeps on its first attempt, signal it mid-task, wait."""
    log = tmp_path / "attempts.txt"
    result = tasks.slow_first_time.enqueue(str(log), 60)
    victim = start_command()
    wait_for(lambda: log.exists())
    victim.send_signal(how)
    victim.wait(timeout=10)
    return result.id


def test_kill_9_during_a_task_then_the_next_run_finishes_it(
    start_command: Starter, run_command: Runner, tmp_path: Path
) -> None:
    task_id = interrupt_mid_task(start_command, tmp_path, signal.SIGKILL)
    assert TaskRecord.objects.get(pk=task_id).status == "RUNNING"
    # Same lock file, so the next run knows at once that the holder is dead.
    after = run_command("-v", "2")
    assert after.returncode == 0, after.stderr
    assert "1 recovered" in after.stdout
    record = TaskRecord.objects.get(pk=task_id)
    assert (record.status, record.return_value) == ("SUCCESSFUL", 2)
    assert record.errors[0]["exception_class_path"] == "cronrunner.errors.RunnerDied"
    assert len(record.worker_ids) == 2
    assert TaskRecord.objects.filter(status="RUNNING").count() == 0


def test_sigterm_lets_the_task_finish_and_hands_the_rest_back(
    start_command: Starter, tmp_path: Path
) -> None:
    out = tmp_path / "graceful.txt"
    first = tasks.sleep_then_append.using(priority=1).enqueue(str(out), "first", 1.5)
    second = tasks.sleep_then_append.enqueue(str(out), "second", 0)
    runner = start_command()
    wait_for(lambda: out.exists())
    runner.send_signal(signal.SIGTERM)
    stdout, stderr = runner.communicate(timeout=30)
    assert runner.returncode == 0, stderr
    assert "stopped: interrupted" in stdout
    assert "SIGTERM: finishing the task in progress, then stopping." in stderr
    assert TaskRecord.objects.get(pk=first.id).status == "SUCCESSFUL"
    assert TaskRecord.objects.get(pk=second.id).status == "READY"
    assert TaskRecord.objects.filter(status="RUNNING").count() == 0


def test_a_second_sigterm_stops_at_once_and_the_next_run_recovers(
    start_command: Starter, run_command: Runner, tmp_path: Path
) -> None:
    log = tmp_path / "attempts.txt"
    result = tasks.slow_first_time.enqueue(str(log), 60)
    runner = start_command()
    wait_for(lambda: log.exists())
    runner.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    runner.send_signal(signal.SIGTERM)
    _, stderr = runner.communicate(timeout=10)
    assert runner.returncode == 130
    assert "stopped at once by a second signal" in stderr
    assert "Traceback" not in stderr
    after = run_command()
    assert "1 recovered" in after.stdout
    assert TaskRecord.objects.get(pk=result.id).status == "SUCCESSFUL"
    assert TaskRecord.objects.filter(status="RUNNING").count() == 0


def test_a_runner_paused_past_its_lease_writes_nothing_when_it_resumes(
    start_command: Starter, run_command: Runner, tmp_path: Path
) -> None:
    out = tmp_path / "stale.txt"
    result = tasks.sleep_then_append.enqueue(str(out), "only", 2)
    stale = start_command("-v", "2")
    wait_for(lambda: out.exists())
    stale.send_signal(signal.SIGSTOP)
    try:
        # The lease runs out while the run is frozen (here: at once rather than in two minutes).
        TaskRecord.objects.filter(pk=result.id).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        other_host = run_command("--lock-file", str(tmp_path / "other-host.lock"), "-v", "2")
        assert other_host.returncode == 0, other_host.stderr
        assert "1 recovered" in other_host.stdout
        taken_over = TaskRecord.objects.get(pk=result.id)
        assert taken_over.status == "SUCCESSFUL"
    finally:
        stale.send_signal(signal.SIGCONT)
    stdout, stderr = stale.communicate(timeout=30)
    assert stale.returncode == 0, stderr
    assert "was taken over by another run while it ran; its result was not stored" in stderr
    assert "LOST CLAIM" in stdout
    after = TaskRecord.objects.get(pk=result.id)
    fields = ("status", "return_value", "errors", "worker_ids", "started_at", "finished_at")
    assert [getattr(after, f) for f in fields] == [getattr(taken_over, f) for f in fields]
    # Both ran it (at least once is the promise), but only the new owner's outcome is stored.
    assert out.read_text().count("end only") == 2
    assert len(after.worker_ids) == 2 and after.errors[0]["exception_class_path"].endswith(
        "RunnerDied"
    )
