"""Concurrency limits when recovery races a finishing run, with real runs: a run paused past its
lease holds the slots of three keys; it resumes, its tasks free to finish, while other runs
start one after another and recover what they find orphaned. Each task is settled once, by
its run's finish or by a recovery, never both, and every slot comes back."""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from cronrunner.store import Status
from django_cronrunner.models import TaskRecord
from tests.e2e.conftest import Starter, wait_for
from tests.testapp import tasks

TENANTS = (1, 2, 3)
#: Runs that start, 0.2 s apart, around the moment the paused run resumes.
RECOVERERS = 5


def started(path: Path) -> int:
    lines = path.read_text().splitlines() if path.exists() else []
    return sum(1 for line in lines if line.startswith("start"))


def test_recovery_racing_a_finishing_run_settles_each_task_and_its_slot_once(
    start_command: Starter, tmp_path: Path
) -> None:
    out, hold = tmp_path / "runs.txt", tmp_path / "hold"
    hold.touch()
    held = [
        tasks.one_per_tenant.using(priority=5).enqueue(tenant, str(out), hold=str(hold)).id
        for tenant in TENANTS
    ]
    waiting = [tasks.one_per_tenant.enqueue(tenant, str(out)).id for tenant in TENANTS]
    paused = start_command("--concurrency", "3", "-v", "2", "--max-seconds", "60")
    wait_for(lambda: started(out) == len(TENANTS), timeout=60)
    paused.send_signal(signal.SIGSTOP)
    # Past its lease, which its heartbeat cannot renew while it is stopped.
    TaskRecord.objects.filter(pk__in=held).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    hold.unlink()  # the paused run's tasks end as soon as it resumes
    # A run takes about a second to start and recover: the paused run resumes somewhere
    # among the recoveries, a different place each time.
    resume = threading.Timer(random.uniform(0.5, 1.3), paused.send_signal, [signal.SIGCONT])
    resume.start()
    try:
        recoverers = []
        for n in range(RECOVERERS):
            recoverers.append(
                start_command("--lock-file", str(tmp_path / f"other{n}.lock"), "-v", "2")
            )
            time.sleep(0.2)
    finally:
        resume.join()
    logs = []
    for run in [paused, *recoverers]:
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        logs.append(stdout)
    recovered = sum(int(n) for log in logs[1:] for n in re.findall(r"(\d+) recovered", log))
    lost = 0
    for result_id in held:
        ended = re.findall(rf"task {result_id} \S+ (SUCCESSFUL|LOST CLAIM)", logs[0])
        record = TaskRecord.objects.get(pk=result_id)
        assert (record.status, record.concurrency_slot) == (Status.SUCCESSFUL, None)
        died = [e for e in record.errors if e["exception_class_path"].endswith("RunnerDied")]
        if died:
            # Recovered while paused: the paused copy's finish changed nothing, not even when
            # the resumed run had claimed the task again, and the task ran again.
            lost += 1
            assert "LOST CLAIM" in ended, (result_id, logs[0])
            assert (len(died), record.attempts) == (1, 2), record.errors
        else:
            # Its finish came first: no recovery touched it.
            assert (ended, record.attempts) == (["SUCCESSFUL"], 1), (result_id, logs)
    assert recovered == lost
    for result_id in waiting:
        assert TaskRecord.objects.get(pk=result_id).status == Status.SUCCESSFUL
    assert not TaskRecord.objects.filter(concurrency_slot__isnull=False).exists()
