"""Fifty runs started at once on one host: one works, the rest step aside at once."""

from __future__ import annotations

from pathlib import Path

from django_cronrunner.models import BatchRun, TaskRecord
from tests.e2e.conftest import Starter, wait_for
from tests.testapp import tasks

RUNS = 50


def test_fifty_runs_on_one_lock(start_command: Starter, tmp_path: Path) -> None:
    release = tmp_path / "release"
    held = tasks.wait_for_file.enqueue(str(release), 120)
    runs = [start_command() for _ in range(RUNS)]
    # Everyone but the holder records a skipped batch and leaves; then the holder may finish.
    wait_for(lambda: BatchRun.objects.filter(stop_reason="lock held").count() == RUNS - 1, 120)
    release.touch()
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0] * RUNS, [err for _, err in outputs if err]
    skipped = BatchRun.objects.filter(stop_reason="lock held")
    assert skipped.count() == RUNS - 1
    assert BatchRun.objects.filter(stop_reason="drained").count() == 1
    slowest = max(skipped.values_list("duration", flat=True))
    print(f"slowest skipped run: {slowest * 1000:.0f} ms from start to exit decision")
    assert slowest < 1.0
    assert sum("lock held" in out or "batch skipped" in out for out, _ in outputs) == RUNS - 1
    assert TaskRecord.objects.get(pk=held.id).return_value is True
