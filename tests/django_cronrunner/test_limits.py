"""Per-key concurrency limits in the store: slots under a unique index, taken after the claim
and given back by whatever moves the row out of RUNNING."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from cronrunner.store import Outcome, Status, TaskFailure
from django_cronrunner.models import TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.storage import store as store_module
from tests.django_cronrunner.rows import task_store
from tests.testapp.tasks import add, one_per_tenant, two_at_once

pytestmark = pytest.mark.django_db(transaction=True)

LATER = datetime(2099, 1, 1, tzinfo=UTC)


def enqueue_tenant(tenant: int, path: str = "/dev/null") -> str:
    return str(one_per_tenant.enqueue(tenant, path).id)


def test_a_full_key_waits_without_holding_back_the_tasks_behind_it() -> None:
    first = enqueue_tenant(1)
    second = enqueue_tenant(1)
    other_tenant = enqueue_tenant(2)
    plain = str(add.enqueue(1, 2).id)
    a, b = task_store("a"), task_store("b")
    assert [task.id for task in a.claim(LATER, 1)] == [first]
    # Tenant 1 is full: b skips its second task and takes the ones behind it.
    assert [task.id for task in b.claim(LATER, 5)] == [other_tenant, plain]
    assert TaskRecord.objects.get(pk=second).status == Status.READY


def test_a_claim_of_several_tasks_of_one_key_hands_back_those_over_the_limit() -> None:
    ids = [enqueue_tenant(1) for _ in range(3)]
    claimed = task_store("a").claim(LATER, 5)
    assert [task.id for task in claimed] == ids[:1]
    assert sorted(TaskRecord.objects.values_list("status", flat=True)) == [
        Status.READY,
        Status.READY,
        Status.RUNNING,
    ]


def test_a_claim_that_loses_its_keys_last_slot_to_another_run_claims_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = enqueue_tenant(1), enqueue_tenant(1)
    plain = str(add.using(priority=-1).enqueue(1, 2).id)
    real_take_slots = store_module.take_slots
    raced = []

    def another_run_takes_the_slot_first(*args: Any) -> Any:
        if not raced:  # between this run's claim and its slot, as a run on another host would
            raced.append(True)
            TaskRecord.objects.filter(pk=second).update(
                status=Status.RUNNING, claimed_by="b", concurrency_slot=0
            )
        return real_take_slots(*args)

    monkeypatch.setattr(store_module, "take_slots", another_run_takes_the_slot_first)
    claimed = task_store("a").claim(LATER, 1)
    # Not an empty claim, which the run would take for "drained": the task behind the key.
    assert [task.id for task in claimed] == [plain]
    assert TaskRecord.objects.get(pk=first).status == Status.READY


def test_a_limit_of_two_runs_two_and_slots_return_when_tasks_finish() -> None:
    for _ in range(3):
        two_at_once.enqueue("/dev/null")
    a = task_store("a")
    held = list(a.claim(LATER, 5))
    assert len(held) == 2
    assert sorted(task.record.concurrency_slot for task in held) == [0, 1]
    assert task_store("b").claim(LATER, 5) == []
    freed = held[0].record.concurrency_slot
    assert a.start(held[0], LATER)
    assert a.finish(held[0], Outcome(return_value=None), LATER)
    assert TaskRecord.objects.get(pk=held[0].id).concurrency_slot is None
    (third,) = task_store("b").claim(LATER, 5)
    assert third.record.concurrency_slot == freed


def test_a_retried_failure_and_a_hand_back_give_the_slot_back() -> None:
    enqueue_tenant(1)
    a = task_store("a")
    (task,) = a.claim(LATER, 1)
    a.release([task], LATER)
    assert TaskRecord.objects.get(pk=task.id).concurrency_slot is None
    (task,) = a.claim(LATER, 1)
    assert a.start(task, LATER)
    failure = TaskFailure("builtins.ValueError", "ValueError\n")
    assert a.finish(task, Outcome(failure=failure, retry_at=LATER), LATER)
    row = TaskRecord.objects.get(pk=task.id)
    assert (row.status, row.concurrency_slot) == (Status.READY, None)


def test_a_dead_runs_slot_comes_back_with_recovery() -> None:
    enqueue_tenant(1)
    waiting = enqueue_tenant(1)
    dead = task_store("dead", lock="lock-dead", lease=60)
    (task,) = dead.claim(LATER, 1)
    assert dead.start(task, LATER)
    survivor = task_store("alive", lock="lock-alive")
    # Within the lease the slot is the dead run's.
    assert survivor.claim(LATER + timedelta(seconds=30), 5) == []
    later = LATER + timedelta(seconds=61)
    assert survivor.recover(later) == 1
    row = TaskRecord.objects.get(pk=task.id)
    assert (row.status, row.concurrency_slot) == (Status.READY, None)
    # The recovered task lost an attempt and queues behind the one that was waiting.
    assert [claimed.id for claimed in survivor.claim(later, 5)] == [waiting]


def test_a_stale_run_finishing_after_recovery_frees_no_slot_of_another_run() -> None:
    enqueue_tenant(1)
    stale = task_store("stale", lock="lock-stale", lease=60)
    (task,) = stale.claim(LATER, 1)
    assert stale.start(task, LATER)
    later = LATER + timedelta(seconds=61)
    other = task_store("other", lock="lock-other")
    assert other.recover(later) == 1
    (again,) = other.claim(later, 1)
    assert again.id == task.id
    assert other.start(again, later)
    # The stale run wakes up and finishes: its write names a claim it no longer has.
    assert not stale.finish(task, Outcome(return_value=None), later)
    row = TaskRecord.objects.get(pk=task.id)
    assert (row.status, row.claimed_by, row.concurrency_slot) == (Status.RUNNING, "other", 0)


@pytest.mark.parametrize("finisher_first", [True, False])
def test_recovery_racing_a_finishing_run_settles_the_task_and_its_slot_once(
    finisher_first: bool,
) -> None:
    enqueue_tenant(1)
    runner = task_store("runner", lock="lock-runner", lease=60)
    (task,) = runner.claim(LATER, 1)
    assert runner.start(task, LATER)
    later = LATER + timedelta(seconds=61)
    recoverer = task_store("recoverer", lock="lock-recoverer")
    if finisher_first:
        assert runner.finish(task, Outcome(return_value=None), later)
        assert recoverer.recover(later) == 0
        expected = Status.SUCCESSFUL
    else:
        assert recoverer.recover(later) == 1
        assert not runner.finish(task, Outcome(return_value=None), later)
        expected = Status.READY
    row = TaskRecord.objects.get(pk=task.id)
    assert (row.status, row.concurrency_slot) == (expected, None)


def test_the_database_refuses_a_slot_someone_holds() -> None:
    enqueue_tenant(1)
    enqueue_tenant(1)
    (task,) = task_store("a").claim(LATER, 5)
    other = TaskRecord.objects.exclude(pk=task.id).get()
    with pytest.raises(IntegrityError), transaction.atomic():
        TaskRecord.objects.filter(pk=other.pk).update(status=Status.RUNNING, concurrency_slot=0)


def most_at_once(lines: list[str]) -> int:
    """Return the most tasks of one key that ran at once, from their start and end lines."""
    events = sorted(
        (float(moment), kind == "start", key) for kind, key, moment in map(str.split, lines)
    )
    running: dict[str, int] = {}
    most = 0
    for _, starting, key in events:  # an end sorts before a start at the same instant
        running[key] = running.get(key, 0) + (1 if starting else -1)
        most = max(most, running[key])
    return most


def test_threads_of_one_run_keep_to_the_limit(tmp_path: Path) -> None:
    out = tmp_path / "runs.txt"
    for _ in range(6):
        two_at_once.enqueue(str(out), seconds=0.2)
    for tenant in (1, 1, 1, 2, 2):
        one_per_tenant.enqueue(tenant, str(out), seconds=0.2)
    summary = run_due_tasks(concurrency=4, max_seconds=60)
    assert summary.succeeded == 11
    assert TaskRecord.objects.filter(concurrency_slot__isnull=False).count() == 0
    lines = out.read_text().splitlines()
    shared = [line for line in lines if line.split()[1] == "x"]
    assert most_at_once(shared) == 2
    assert most_at_once([line for line in lines if line not in shared]) == 1
