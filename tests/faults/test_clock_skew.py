"""Hosts whose clocks are minutes apart share one database: every decision is on its clock."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from django_cronrunner.compat import task_backends
from django_cronrunner.models import ScheduleState, TaskRecord
from tests.e2e.conftest import REPO, wait_for
from tests.faults.fleet import (
    ONLY_SERVERS,
    SKEW,
    HostStarter,
    database_time,
    enqueue_now,
    host_env,
    host_run,
    on_host,
)
from tests.testapp import tasks

pytestmark = [pytest.mark.field, ONLY_SERVERS, pytest.mark.django_db(transaction=True)]

FAST, SLOW = SKEW, -SKEW


def test_a_fast_host_never_takes_over_a_slow_hosts_live_task(
    tmp_path: Path, host_start: HostStarter
) -> None:
    log, release = tmp_path / "log", tmp_path / "release"
    record = enqueue_now(
        "tests.testapp.fleet_tasks.wait_for_release",
        log=str(log),
        release=str(release),
        most_seconds=90,
    )
    slow = host_start(SLOW, tmp_path / "slow.lock", "--max-seconds", "100", "-v", "2")
    wait_for(lambda: log.exists() or slow.poll() is not None, timeout=60)
    # Past the 10 s lease: only the slow host's renewals, on the database's clock, keep it.
    time.sleep(13)
    record.refresh_from_db()
    assert record.status == "RUNNING" and record.lease_expires_at is not None
    lease_left = (record.lease_expires_at - database_time()).total_seconds()
    assert 0 < lease_left <= 10, lease_left
    fast = host_run(FAST, tmp_path / "fast.lock", "--max-seconds", "3")
    assert fast.returncode == 0, fast.stderr
    assert "0 run (0 succeeded, 0 failed), 0 recovered" in fast.stdout, fast.stdout
    release.touch()
    stdout, stderr = slow.communicate(timeout=60)
    assert slow.returncode == 0, stderr
    assert "LOST CLAIM" not in stdout + stderr
    record.refresh_from_db()
    assert record.status == "SUCCESSFUL" and len(record.worker_ids) == 1
    assert log.read_text().count("start") == 1


def test_a_fast_host_never_runs_a_deferred_task_early_and_a_slow_host_runs_it_on_time(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    due = database_time() + timedelta(seconds=20)
    result = tasks.append_line.using(run_after=due).enqueue(str(out), "deferred")
    early = host_run(FAST, tmp_path / "fast.lock", "--max-seconds", "2")
    assert early.returncode == 0, early.stderr
    assert "0 run" in early.stdout and not out.exists()
    assert database_time() < due  # the run really was early, even on a loaded machine
    wait_for(lambda: database_time() > due, timeout=30)
    on_time = host_run(SLOW, tmp_path / "slow.lock", "--max-seconds", "2")
    assert on_time.returncode == 0, on_time.stderr
    assert "1 run (1 succeeded" in on_time.stdout, on_time.stdout
    record = TaskRecord.objects.get(pk=result.id)
    assert record.status == "SUCCESSFUL" and record.due_at == due
    assert record.started_at is not None and record.started_at >= due


def test_a_task_enqueued_on_a_fast_host_is_due_at_once_on_a_slow_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    enqueue = (
        "from tests.testapp import tasks; "
        f"print(tasks.append_line.enqueue({str(out)!r}, 'from the fast host').id)"
    )
    argv = on_host(FAST, [sys.executable, "-m", "django", "shell", "-c", enqueue])
    shell = subprocess.run(argv, cwd=REPO, env=host_env(), capture_output=True, text=True)
    assert shell.returncode == 0, shell.stderr
    record = TaskRecord.objects.get(pk=shell.stdout.split()[-1])
    assert abs((record.due_at - database_time()).total_seconds()) < 30
    run = host_run(SLOW, tmp_path / "slow.lock", "--max-seconds", "2")
    assert "1 run (1 succeeded" in run.stdout, run.stdout + run.stderr
    assert out.read_text() == "from the fast host\n"


def test_each_schedule_slot_fires_once_and_on_time_from_a_fast_and_a_slow_host(
    tmp_path: Path,
) -> None:
    env = host_env(CRONRUNNER_FLEET_SLOTS=str(tmp_path / "slots"))
    locks = {FAST: tmp_path / "fast.lock", SLOW: tmp_path / "slow.lock"}
    states = ScheduleState.objects.filter(name="every-minute")
    # The first host to see the schedule starts it from its next slot by the database's clock.
    # On a loaded machine the second host's first run may already fall after that slot.
    first = host_run(FAST, locks[FAST], "--max-seconds", "1", env=env)
    assert first.returncode == 0, first.stderr
    seen = states.get().checked_until
    first = host_run(SLOW, locks[SLOW], "--max-seconds", "1", env=env)
    assert first.returncode == 0, first.stderr
    slot = seen.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # Runs alternate between the hosts, as two crontabs would, until the slot is well past.
    while database_time() < slot + timedelta(seconds=4):
        for skew, lock in locks.items():
            run = host_run(skew, lock, "--max-seconds", "1", env=env)
            assert run.returncode == 0, run.stderr
    checked_until = states.get().checked_until
    # Every minute from the first slot to the last check, each once, and no other.
    expected = [slot]
    while expected[-1] + timedelta(minutes=1) <= checked_until:
        expected.append(expected[-1] + timedelta(minutes=1))
    fired = TaskRecord.objects.filter(schedule_name="every-minute").order_by("scheduled_for")
    assert [record.scheduled_for for record in fired] == expected
    for record in fired:
        # On time: by the first run after the slot (a loaded machine starts runs slowly), where
        # a fast host's clock fired it five minutes early and a slow one's five minutes late.
        assert record.scheduled_for <= record.enqueued_at
        assert record.enqueued_at <= record.scheduled_for + timedelta(seconds=15)
        assert record.status == "SUCCESSFUL"
    # Neither host moved the schedule past the database's present (a fast host's clock would).
    assert seen <= checked_until <= database_time()


def test_setup_warns_about_a_host_minutes_off_the_database() -> None:
    assert task_backends["default"] is not None
    argv = on_host(FAST, [sys.executable, "-m", "django", "cronrunner_setup"])
    setup = subprocess.run(argv, cwd=REPO, env=host_env(), capture_output=True, text=True)
    assert "WARNING This host's clock is 300." in setup.stdout, setup.stdout
    assert "ahead of the database 'default'" in setup.stdout
