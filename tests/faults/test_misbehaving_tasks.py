"""Tasks that raise KeyboardInterrupt or SystemExit fail alone; only a real signal stops a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from django_cronrunner.models import BatchRun, TaskRecord
from tests.e2e.conftest import Runner
from tests.testapp import tasks


@pytest.mark.parametrize("concurrency", ["1", "3"])
def test_interrupt_and_exit_from_tasks_are_their_failures(
    run_command: Runner, tmp_path: Path, concurrency: str
) -> None:
    interrupted = tasks.interrupt.enqueue()
    exited = tasks.exit_process.enqueue()
    in_child = tasks.interrupt_in_child.enqueue()
    retried = tasks.interrupt_then_succeed.enqueue(str(tmp_path / "in-process"))
    retried_in_child = tasks.exit_in_child_then_succeed.enqueue(str(tmp_path / "child"))
    others = [tasks.add.using(priority=-5).enqueue(n, n) for n in range(5)]
    result = run_command("--concurrency", concurrency, "-v", "2")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = result.stdout.splitlines()[-1]
    # Ten tasks, two of them twice: 12 attempts, 5 of them failed.
    assert "12 run (7 succeeded, 5 failed)" in summary and summary.endswith("stopped: drained")

    def errors(task_id: str) -> list[str]:
        return [
            error["exception_class_path"] for error in TaskRecord.objects.get(pk=task_id).errors
        ]

    for task_id, exception in [
        (interrupted.id, "builtins.KeyboardInterrupt"),
        (exited.id, "builtins.SystemExit"),
        (in_child.id, "builtins.KeyboardInterrupt"),
    ]:
        assert TaskRecord.objects.get(pk=task_id).status == "FAILED"
        assert errors(task_id) == [exception]
    # Retried per their policy (due at once), and the retry ran in the same run.
    for task_id, exception in [
        (retried.id, "builtins.KeyboardInterrupt"),
        (retried_in_child.id, "builtins.SystemExit"),
    ]:
        record = TaskRecord.objects.get(pk=task_id)
        assert (record.status, record.return_value) == ("SUCCESSFUL", "done")
        assert errors(task_id) == [exception]
    assert {TaskRecord.objects.get(pk=r.id).status for r in others} == {"SUCCESSFUL"}
    assert BatchRun.objects.count() == 1
