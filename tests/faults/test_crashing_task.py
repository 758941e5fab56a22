"""A task that ends its runner's process every time fails after exactly its max attempts."""

from __future__ import annotations

from pathlib import Path

from django_cronrunner.models import TaskRecord
from tests.e2e.conftest import Runner
from tests.testapp import tasks


def test_a_task_that_kills_its_runner_fails_after_max_attempts_while_others_flow(
    run_command: Runner, tmp_path: Path
) -> None:
    out = tmp_path / "flow.txt"
    crasher = tasks.exit_hard.enqueue()
    assert tasks.exit_hard.max_attempts == 4  # type: ignore[attr-defined]
    others = []
    crashed_runs = 0
    for round_number in range(8):
        # New work arrives every minute; it must not wait behind the crashing task.
        others += [tasks.append_line.enqueue(str(out), f"{round_number}-{n}") for n in range(3)]
        result = run_command()
        if result.returncode != 0:
            crashed_runs += 1
            # The three new tasks ran before the crash: nothing waits behind the crasher.
            done = out.read_text().splitlines() if out.exists() else []
            assert {f"{round_number}-{n}" for n in range(3)} <= set(done) or round_number == 0
        elif "stopped: drained" in result.stdout:
            break
    record = TaskRecord.objects.get(pk=crasher.id)
    assert record.status == "FAILED"
    assert len(record.worker_ids) == 4 == crashed_runs
    assert [e["exception_class_path"] for e in record.errors] == (
        ["cronrunner.errors.RunnerDied"] * 4
    )
    assert all(TaskRecord.objects.get(pk=r.id).status == "SUCCESSFUL" for r in others)
    assert not TaskRecord.objects.filter(status__in=["READY", "RUNNING"]).exists()
