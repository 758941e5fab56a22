"""Cancelling tasks while several real runs claim them: a task cancel() reports CANCELLED never
starts, one it asked to stop never runs on unasked, and none ends as if it had not been
cancelled."""

from __future__ import annotations

import random
import time
from pathlib import Path

from cronrunner.store import Status
from django_cronrunner import control
from django_cronrunner.models import CANCELLED_PATH, TaskRecord
from tests.e2e.conftest import Starter, wait_for
from tests.faults.control_tasks import note_start, starts

TASKS = 60


def test_cancels_racing_the_claims_of_several_runs(start_command: Starter, tmp_path: Path) -> None:
    out = str(tmp_path / "starts.txt")
    ids = [note_start.enqueue(out, 0.05).id for _ in range(TASKS)]
    # Runs of one thread claim several tasks at once, and hold the others claimed, unstarted,
    # while they run one; runs of two threads claim one at a time.
    runs = [
        start_command(
            "--lock-file",
            str(tmp_path / f"run{n}.lock"),
            "--concurrency",
            str(1 + n % 2),
            "--max-seconds",
            "30",
        )
        for n in range(4)
    ]
    wait_for(lambda: starts(out), timeout=60)
    random.shuffle(ids)
    answers: dict[str, tuple[control.Cancellation, float]] = {}
    for result_id in ids:
        answers[result_id] = (control.cancel(result_id, reason="raced"), time.time())
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    noted = starts(out)
    outcomes = {answer for answer, _ in answers.values()}
    assert control.Cancellation.STOP_REQUESTED in outcomes, answers  # the race was met
    for result_id, (answer, answered_at) in answers.items():
        record = TaskRecord.objects.get(pk=result_id)
        began = noted.get(result_id, [])
        assert len(began) <= 1, (result_id, began)
        if answer is control.Cancellation.CANCELLED:
            assert not began, (result_id, began)
            assert (record.status, record.attempts) == (Status.FAILED, 0)
        elif answer is control.Cancellation.STOP_REQUESTED:
            assert record.cancel_requested_at is not None
            # Not started, or started before the answer, or started knowing it was asked.
            for asked, moment in began:
                assert asked or moment <= answered_at, (result_id, began, answered_at)
            # One that had passed its last check before the request keeps its real outcome.
            if record.status != Status.FAILED:
                assert (record.status, len(began)) == (Status.SUCCESSFUL, 1), result_id
                assert began[0][1] <= answered_at
        else:  # it had already finished
            assert record.status == Status.SUCCESSFUL, (result_id, record.status)
            assert len(began) == 1 and began[0][1] <= answered_at, (result_id, began)
        if record.status == Status.FAILED:
            assert record.errors[-1]["exception_class_path"] == CANCELLED_PATH
