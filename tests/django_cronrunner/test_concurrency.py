"""Several tasks at once (--concurrency) and a run that waits for work (--poll)."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from cronrunner.clock import FakeClock
from django_cronrunner.compat import TaskResultStatus
from django_cronrunner.models import BatchRun, TaskRecord
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = StringIO()
    call_command("run_due_tasks", *args, stdout=out)
    return out.getvalue()


def test_concurrency_runs_tasks_at_once_each_thread_on_its_own_connection() -> None:
    results = [tasks.rendezvous.enqueue(3) for _ in range(6)]
    output = run("--concurrency", "3")
    assert "batch finished: 6 run (6 succeeded, 0 failed)" in output
    finished = [tasks.rendezvous.get_result(result.id) for result in results]
    # Three tasks at a time could only pass their barrier together: three threads ran them.
    assert {result.status for result in finished} == {TaskResultStatus.SUCCESSFUL}
    assert len({result.return_value for result in finished}) == 3
    assert BatchRun.objects.get().tasks_run == 6


def test_concurrency_keeps_priority_order() -> None:
    low = [tasks.add.using(priority=-10).enqueue(n, 0) for n in range(4)]
    high = [tasks.add.using(priority=10).enqueue(n, 0) for n in range(4)]
    run("--concurrency", "2")
    high_ids = {result.id for result in high}
    started = sorted(TaskRecord.objects.all(), key=lambda record: record.last_attempted_at)
    is_high = [str(record.pk) in high_ids for record in started]
    assert sorted(str(record.pk) for record in started) == sorted([*high_ids, *(r.id for r in low)])
    # Two threads claiming at the same moment take the two best tasks left, and either may commit
    # first: a low task can start just before the last high one, never before two of them.
    for position, high_task in enumerate(is_high):
        if not high_task:
            assert sum(is_high[position:]) <= 1, [record.priority for record in started]


def test_poll_starts_a_task_enqueued_while_the_run_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    late: list[str] = []

    class EnqueueAfterTenSeconds(FakeClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            if not late and self.monotonic() >= 10:
                late.append(tasks.add.enqueue(20, 22).id)

    clock = EnqueueAfterTenSeconds(datetime.now(UTC))
    monkeypatch.setattr("django_cronrunner.run.runner.SystemClock", lambda: clock)
    output = run("--poll", "1", "--max-seconds", "30")
    assert tasks.add.get_result(late[0]).return_value == 42
    started = TaskRecord.objects.get(pk=late[0]).started_at
    assert started is not None
    # Enqueued at 10 s, looked for every second: started by 11 s of the run.
    assert (started - clock.now()).total_seconds() <= -19
    assert "1 run (1 succeeded, 0 failed)" in output
    assert "in 30.0s of a 30s budget; stopped: budget spent" in output
