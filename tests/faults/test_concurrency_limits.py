"""Concurrency limits against real runs: several runners at once, a runner killed with kill -9
while it holds a slot, a lease renewed for a task longer than it, and a run paused past its
lease. Tasks write start and end lines, from which the tests count what ran at once."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from cronrunner.store import Status
from django_cronrunner.models import TaskRecord
from tests.django_cronrunner.test_limits import most_at_once
from tests.e2e.conftest import Runner, Starter, wait_for
from tests.testapp import tasks


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def starts(path: Path, tenant: int) -> int:
    return sum(1 for line in lines(path) if line.startswith(f"start {tenant} "))


def test_several_runners_keep_every_key_to_its_limit(
    start_command: Starter, tmp_path: Path
) -> None:
    out = tmp_path / "runs.txt"
    for n in range(12):
        tasks.one_per_tenant.enqueue(n % 2, str(out), seconds=0.2)
    for _ in range(8):
        tasks.two_at_once.enqueue(str(out), seconds=0.2)
    runners = [
        start_command(
            "--lock-file",
            str(tmp_path / f"host{n}.lock"),
            "--concurrency",
            "2",
            "--poll",
            "0.2",
            "--max-seconds",
            "15",
        )
        for n in range(3)
    ]
    for runner in runners:
        _, err = runner.communicate(timeout=120)
        assert runner.returncode == 0, err
    assert set(TaskRecord.objects.values_list("status", flat=True)) == {Status.SUCCESSFUL}
    recorded = lines(out)
    assert len(recorded) == 40
    shared = [line for line in recorded if line.split()[1] == "x"]
    assert most_at_once(shared) <= 2
    assert most_at_once([line for line in recorded if line not in shared]) == 1


def test_a_slot_held_by_a_killed_run_comes_back_with_recovery(
    start_command: Starter, run_command: Runner, lock_file: Path, tmp_path: Path
) -> None:
    out, hold = tmp_path / "runs.txt", tmp_path / "hold"
    hold.touch()
    victim = tasks.one_per_tenant.using(priority=5).enqueue(1, str(out), hold=str(hold))
    waiting = tasks.one_per_tenant.enqueue(1, str(out))
    other_tenant = tasks.one_per_tenant.enqueue(2, str(out))
    killed = start_command("--max-seconds", "60")  # this test's lock file
    wait_for(lambda: starts(out, 1) == 1)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    hold.unlink()
    # Another host, within the dead run's lease: tenant 1 is full, tenant 2 is not held back.
    elsewhere = run_command("--lock-file", str(tmp_path / "elsewhere.lock"), "-v", "2")
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert TaskRecord.objects.get(pk=other_tenant.id).status == Status.SUCCESSFUL
    assert TaskRecord.objects.get(pk=waiting.id).status == Status.READY
    assert TaskRecord.objects.get(pk=victim.id).concurrency_slot == 0
    # The next run on the dead run's lock file knows it died and takes its slot back.
    after = run_command("-v", "2")
    assert after.returncode == 0, after.stderr
    assert "1 recovered" in after.stdout
    for result in (victim, waiting):
        record = TaskRecord.objects.get(pk=result.id)
        assert (record.status, record.concurrency_slot) == (Status.SUCCESSFUL, None)
    assert (
        TaskRecord.objects.get(pk=victim.id)
        .errors[0]["exception_class_path"]
        .endswith("RunnerDied")
    )
    tenant_one = [line for line in lines(out) if line.split()[1] == "1"]
    assert starts(out, 1) == 3  # the victim twice (killed, then again) and the waiting task
    assert most_at_once([line for line in tenant_one if "start" in line or "end" in line]) <= 2


def test_a_task_longer_than_its_lease_keeps_its_slot(
    start_command: Starter,
    run_command: Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRONRUNNER_TEST_LEASE", "10")
    out, hold = tmp_path / "runs.txt", tmp_path / "hold"
    hold.touch()
    long = tasks.one_per_tenant.using(priority=5).enqueue(1, str(out), hold=str(hold))
    waiting = tasks.one_per_tenant.enqueue(1, str(out))
    first = start_command("--max-seconds", "1")
    wait_for(lambda: starts(out, 1) == 1)
    time.sleep(11)  # past the first lease: the heartbeat has renewed it
    assert TaskRecord.objects.get(pk=long.id).lease_expires_at > timezone.now()
    other = run_command("--lock-file", str(tmp_path / "other.lock"), "-v", "2")
    assert other.returncode == 0, other.stderr
    assert "0 recovered" in other.stdout
    assert TaskRecord.objects.get(pk=waiting.id).status == Status.READY
    hold.unlink()
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert TaskRecord.objects.get(pk=long.id).status == Status.SUCCESSFUL
    assert run_command().returncode == 0
    assert TaskRecord.objects.get(pk=waiting.id).status == Status.SUCCESSFUL
    assert most_at_once(lines(out)) == 1


def test_a_run_paused_past_its_lease_frees_no_slot_when_it_resumes(
    start_command: Starter, run_command: Runner, tmp_path: Path
) -> None:
    out, hold = tmp_path / "runs.txt", tmp_path / "hold"
    hold.touch()
    stale_task = tasks.one_per_tenant.using(priority=5).enqueue(1, str(out), hold=str(hold))
    stale = start_command("-v", "2", "--max-seconds", "60")
    wait_for(lambda: starts(out, 1) == 1)
    stale.send_signal(signal.SIGSTOP)
    try:
        TaskRecord.objects.filter(pk=stale_task.id).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        hold.unlink()
        # Another host takes the task over, and starts a second task of the key that holds
        # the slot while the paused run resumes.
        hold.touch()
        taker = start_command("--lock-file", str(tmp_path / "taker.lock"), "-v", "2")
        wait_for(lambda: starts(out, 1) == 2)
        taken = TaskRecord.objects.get(pk=stale_task.id)
        assert (taken.status, taken.concurrency_slot) == (Status.RUNNING, 0)
        assert taken.claimed_by != ""
    finally:
        stale.send_signal(signal.SIGCONT)
    # Both runs' copies wait on `hold`: release the stale run's copy alone.
    (tmp_path / f"hold.release-{stale.pid}").touch()
    stdout, stderr = stale.communicate(timeout=60)
    assert stale.returncode == 0, stderr
    assert "LOST CLAIM" in stdout
    # The stale run's finish changed nothing: the taker still holds the slot.
    held = TaskRecord.objects.get(pk=stale_task.id)
    assert (held.status, held.concurrency_slot) == (Status.RUNNING, 0)
    assert held.claimed_by == taken.claimed_by
    hold.unlink()
    _, err = taker.communicate(timeout=60)
    assert taker.returncode == 0, err
    done = TaskRecord.objects.get(pk=stale_task.id)
    assert (done.status, done.concurrency_slot) == (Status.SUCCESSFUL, None)
