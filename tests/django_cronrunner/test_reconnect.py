"""A connection lost mid-run: the write is retried on a new connection, or the run stops."""

from __future__ import annotations

from typing import Any, cast

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from cronrunner.errors import StorageUnavailable
from cronrunner.store import Outcome
from django_cronrunner.models import TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.storage.store import DatabaseTaskStore
from django_cronrunner.storage.transient import retry_after_reconnect
from tests.django_cronrunner.rows import task_store
from tests.testapp import tasks
from tests.testapp.db_faults import backend_id, end_connections

pytestmark = pytest.mark.django_db(transaction=True)

SERVER_ONLY = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="a SQLite file has no connection to lose"
)


class DeadConnection:
    """Stand in for a connection whose server never comes back."""

    in_atomic_block = False
    connection = None

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def always_lost() -> Any:
    raise OperationalError("server closed the connection unexpectedly")


@SERVER_ONLY
def test_a_result_is_written_on_a_new_connection_after_the_old_one_dies() -> None:
    result = tasks.add.enqueue(2, 3)
    store = task_store()
    (claimed,) = store.claim(timezone.now(), 1)
    assert store.start(claimed, timezone.now())
    end_connections(only=backend_id(connection))
    assert store.finish(claimed, Outcome(return_value=5), timezone.now())
    record = TaskRecord.objects.get(pk=result.id)
    assert (record.status, record.return_value) == ("SUCCESSFUL", 5)


@SERVER_ONLY
def test_a_run_whose_task_ends_its_connection_goes_on() -> None:
    dropper = tasks.drop_own_connection.using(priority=5).enqueue()
    after = [tasks.add.enqueue(n, n) for n in range(3)]
    summary = run_due_tasks(max_seconds=30)
    assert (summary.succeeded, summary.failed, summary.stop_reason) == (4, 0, "drained")
    assert TaskRecord.objects.get(pk=dropper.id).return_value == "dropped"
    assert [TaskRecord.objects.get(pk=r.id).return_value for r in after] == [0, 2, 4]


def test_gives_up_when_the_server_stays_away() -> None:
    dead = DeadConnection()
    with pytest.raises(OperationalError):
        retry_after_reconnect(always_lost, cast(BaseDatabaseWrapper, dead), patience=0.5)
    # 0.1 + 0.2 fit in half a second; 0.4 more would not.
    assert dead.closed == 2


def test_other_errors_are_not_retried() -> None:
    calls = []

    def duplicate() -> None:
        calls.append(1)
        raise IntegrityError("duplicate key")

    with pytest.raises(IntegrityError):
        retry_after_reconnect(duplicate, connection, patience=5)
    assert len(calls) == 1


def test_a_database_that_refuses_the_write_is_not_retried() -> None:
    # What MySQLdb raises in a READ ONLY transaction: a new connection would fail the same way.
    calls = []

    def refused() -> None:
        calls.append(1)
        raise OperationalError(1792, "Cannot execute statement in a READ ONLY transaction.")

    with pytest.raises(OperationalError):
        retry_after_reconnect(refused, connection, patience=5)
    assert len(calls) == 1


def test_a_lost_connection_inside_a_transaction_is_not_retried() -> None:
    calls = []

    def lost() -> None:
        calls.append(1)
        always_lost()

    with transaction.atomic(), pytest.raises(OperationalError):
        retry_after_reconnect(lost, connection, patience=5)
    assert len(calls) == 1


def test_a_result_that_cannot_be_written_stops_the_run_and_the_next_run_recovers_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = tasks.add.enqueue(20, 22)

    def finish_fails(*args: Any) -> bool:
        raise OperationalError("the connection is lost")

    with monkeypatch.context() as patched:
        patched.setattr(DatabaseTaskStore, "finish", finish_fails)
        with pytest.raises(StorageUnavailable, match="the connection is lost"):
            run_due_tasks(max_seconds=30)
    # Never marked successful without a stored result; the next run on this lock recovers it.
    assert TaskRecord.objects.get(pk=result.id).status == "RUNNING"
    summary = run_due_tasks(max_seconds=30)
    assert (summary.recovered, summary.succeeded) == (1, 1)
    record = TaskRecord.objects.get(pk=result.id)
    assert (record.status, record.return_value, len(record.worker_ids)) == ("SUCCESSFUL", 42, 2)
