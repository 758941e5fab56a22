"""25 kill -9 at random moments over 400 tasks: nothing is lost, few run twice."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from django.utils import timezone

from django_cronrunner.models import TaskRecord
from tests.e2e.conftest import Runner, Starter, wait_for

TASKS = 400
KILLS = 25


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_kill_9_at_random_moments_loses_nothing(
    start_command: Starter, run_command: Runner, tmp_path: Path
) -> None:
    seed = int(os.environ.get("CRONRUNNER_FAULT_SEED", random.randrange(1 << 30)))
    chance = random.Random(seed)
    print(f"seed {seed} (CRONRUNNER_FAULT_SEED reproduces it)")
    out = tmp_path / "executions.txt"
    now = timezone.now()
    TaskRecord.objects.bulk_create(
        [
            TaskRecord(
                backend_name="default",
                task_path="tests.testapp.tasks.append_line",
                kwargs={"path": str(out), "line": str(n), "sleep": 0.02},
                enqueued_at=now,
                due_at=now,
                # A run killed during a task costs that task an attempt; ample room here.
                max_attempts=KILLS,
            )
            for n in range(TASKS)
        ],
        batch_size=200,
    )
    kills = 0
    for _ in range(KILLS):
        before = len(lines(out))
        victim = start_command()
        # Somewhere after it has started to work: within a task, a claim or a write.
        wait_for(lambda n=before, v=victim: len(lines(out)) > n or v.poll() is not None)
        if victim.poll() is not None:
            break  # it drained everything before we could strike
        time.sleep(chance.uniform(0, 0.3))
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        kills += 1
    for _ in range(3):
        clean = run_command("--max-seconds", "120")
        assert clean.returncode == 0, clean.stderr
        if "stopped: drained" in clean.stdout:
            break
    statuses = list(TaskRecord.objects.values_list("status", flat=True))
    assert statuses.count("SUCCESSFUL") == TASKS, sorted(set(statuses))
    executed = lines(out)
    assert set(executed) == {str(n) for n in range(TASKS)}  # none lost
    extra = len(executed) - TASKS
    print(f"{kills} kills, {extra} extra executions over {TASKS} tasks")
    assert kills >= KILLS // 2
    assert extra <= kills
