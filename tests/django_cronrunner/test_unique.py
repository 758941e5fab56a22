"""Unique tasks: an equal enqueue while one is pending stores nothing and returns the pending
one, enforced by the database's unique index (real processes race for it)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction

from cronrunner.store import Outcome, Status, TaskFailure
from django_cronrunner import control
from django_cronrunner.bulk import enqueue_many
from django_cronrunner.compat import InvalidTask
from django_cronrunner.errors import UniqueKeyError
from django_cronrunner.models import TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.task import CronRunnerTask
from django_cronrunner.task import task as task_with_options
from tests.django_cronrunner.rows import task_store
from tests.e2e.conftest import REPO, subprocess_env
from tests.testapp.tasks import add, fail, import_tenant, reindex_page, sync_everything

pytestmark = pytest.mark.django_db(transaction=True)

LATER = datetime(2099, 1, 1, tzinfo=UTC)


def rows(path: str) -> int:
    return TaskRecord.objects.filter(task_path=path).count()


def test_an_equal_enqueue_while_ready_returns_the_pending_result() -> None:
    first = reindex_page.enqueue(42)
    second = reindex_page.enqueue(42)
    other = reindex_page.enqueue(7)
    assert second.id == first.id
    assert other.id != first.id
    assert rows(reindex_page.module_path) == 2


def test_a_started_task_frees_its_key_and_the_next_enqueue_is_stored() -> None:
    first = reindex_page.enqueue(42)
    store = task_store()
    (claimed,) = store.claim(LATER, 5)
    # Claimed but not started: still pending.
    assert reindex_page.enqueue(42).id == first.id
    assert store.start(claimed, LATER)
    second = reindex_page.enqueue(42)
    assert second.id != first.id
    assert store.finish(claimed, Outcome(return_value=42), LATER)
    assert reindex_page.enqueue(42).id == second.id


def test_unique_until_finished_dedupes_while_running_and_frees_the_key_at_the_end() -> None:
    first = sync_everything.enqueue()
    store = task_store()
    (claimed,) = store.claim(LATER, 5)
    assert store.start(claimed, LATER)
    assert sync_everything.enqueue().id == first.id
    assert store.finish(claimed, Outcome(return_value=None), LATER)
    assert TaskRecord.objects.get(pk=first.id).unique_key is None
    assert sync_everything.enqueue().id != first.id


def test_an_explicit_key_makes_calls_with_other_arguments_equal() -> None:
    first = import_tenant.enqueue(3, batch=1)
    assert import_tenant.enqueue(3, batch=2).id == first.id
    assert import_tenant.enqueue(4, batch=1).id != first.id
    # One enqueue can choose its own key.
    keyed = reindex_page.using(unique_key="homepage")
    assert keyed.enqueue(1).id == keyed.enqueue(2).id


def test_bulk_enqueue_honours_pending_rows_and_duplicates_within_the_batch() -> None:
    pending = reindex_page.enqueue(2)
    results = enqueue_many(reindex_page, args=[(1,), (1,), (2,), (3,)])
    ids = [result.id for result in results]
    assert ids[0] == ids[1]
    assert ids[2] == pending.id
    assert len(set(ids)) == 3
    assert rows(reindex_page.module_path) == 3


def test_a_rolled_back_enqueue_frees_the_key() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        reindex_page.enqueue(5)
        raise RuntimeError
    assert rows(reindex_page.module_path) == 0
    assert reindex_page.enqueue(5).status == Status.READY


def test_the_database_refuses_a_second_pending_row_with_the_key() -> None:
    first = reindex_page.enqueue(9)
    record = TaskRecord.objects.get(pk=first.id)
    record.pk = None
    record.id = None
    with pytest.raises(IntegrityError), transaction.atomic():
        TaskRecord.objects.create(
            **{
                field.name: getattr(record, field.name)
                for field in TaskRecord._meta.concrete_fields
                if field.name != "id"
            }
        )


def test_cancelling_a_pending_unique_task_frees_its_key() -> None:
    from django_cronrunner.control import cancel

    first = reindex_page.enqueue(11)
    cancel(first.id)
    assert reindex_page.enqueue(11).id != first.id


def test_plain_tasks_store_no_key() -> None:
    result = add.enqueue(1, 2)
    assert TaskRecord.objects.get(pk=result.id).unique_key is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"unique": True, "unique_until": "lunch"}, "unique_until must be one of"),
        ({"unique_key": 5}, "unique_key must be a string or a callable"),
        ({"concurrency_limit": 0}, "concurrency_limit must be a whole number"),
        ({"concurrency_key": "api"}, "concurrency_key needs a concurrency_limit"),
        ({"backoff": 3}, "backoff must be a callable"),
    ],
)
def test_bad_declarations_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidTask, match=message):
        task_with_options(**options)(add.func)


def fail_the_ready_task(result_id: str) -> None:
    """Run the one READY task to a failure, which frees its key."""
    store = task_store()
    (claimed,) = store.claim(LATER, 5)
    assert claimed.id == result_id
    assert store.start(claimed, LATER)
    assert store.finish(claimed, Outcome(failure=TaskFailure("builtins.ValueError", "x")), LATER)
    assert TaskRecord.objects.get(pk=result_id).unique_key is None


@pytest.mark.parametrize("unique_task", [reindex_page, sync_everything])
def test_a_retried_unique_task_takes_its_key_back(unique_task: CronRunnerTask) -> None:
    args = (42,) if unique_task is reindex_page else ()
    first = unique_task.enqueue(*args)
    fail_the_ready_task(first.id)
    assert control.retry(first.id)
    assert TaskRecord.objects.get(pk=first.id).unique_key is not None
    assert unique_task.enqueue(*args).id == first.id
    assert rows(unique_task.module_path) == 1


def test_retrying_a_unique_task_whose_equal_task_is_pending_is_refused() -> None:
    first = import_tenant.enqueue(3, batch=1)
    fail_the_ready_task(first.id)
    pending = import_tenant.enqueue(3, batch=2)  # an equal call: the key is free
    with pytest.raises(UniqueKeyError, match=f"an equal task, {pending.id}, is pending"):
        control.retry(first.id)
    assert TaskRecord.objects.get(pk=first.id).status == Status.FAILED
    assert TaskRecord.objects.get(pk=pending.id).unique_key is not None


def test_retrying_equal_failed_tasks_together_queues_one_of_them() -> None:
    first = reindex_page.enqueue(8)
    fail_the_ready_task(first.id)
    second = reindex_page.enqueue(8)
    fail_the_ready_task(second.id)
    plain = fail.enqueue("boom")
    run_due_tasks(max_seconds=10)
    assert control.retry_failed_tasks(TaskRecord.objects.all()) == 2
    statuses = dict(TaskRecord.objects.values_list("pk", "status"))
    assert statuses[uuid.UUID(plain.id)] == Status.READY
    ready = [pk for pk in map(uuid.UUID, (first.id, second.id)) if statuses[pk] == Status.READY]
    assert len(ready) == 1
    assert reindex_page.enqueue(8).id == str(ready[0])


RETRY_RACE = """
import sys, django
django.setup()
from django_cronrunner import control
from django_cronrunner.errors import UniqueKeyError
try:
    print(control.retry(sys.argv[1]))
except UniqueKeyError:
    print("refused")
"""


def test_processes_racing_to_retry_equal_unique_tasks_queue_one() -> None:
    failed = []
    for _ in range(6):
        result = reindex_page.enqueue(13)
        fail_the_ready_task(result.id)
        failed.append(result.id)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RETRY_RACE, result_id],
            cwd=REPO,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for result_id in failed
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    assert sorted(out.strip() for out, _ in outputs) == ["True"] + ["refused"] * 5
    assert TaskRecord.objects.filter(status=Status.READY).count() == 1


RACE = """
import sys, django
django.setup()
from tests.testapp.tasks import reindex_page
print(reindex_page.enqueue(int(sys.argv[1])).id)
"""


def test_processes_racing_to_enqueue_one_key_store_one_row() -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, "77"],
            cwd=REPO,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    ids = {out.strip() for out, _ in outputs}
    assert len(ids) == 1, ids
    assert rows(reindex_page.module_path) == 1
    assert connection.vendor in {"sqlite", "postgresql", "mysql"}


def test_the_pending_key_constraints_raise_no_system_check_warning() -> None:
    # MariaDB has no partial indexes; the constraint is meant to be plain there.
    messages = TaskRecord.check(databases=["default"])
    assert [message.id for message in messages] == []


def test_the_index_is_partial_where_the_database_has_partial_indexes() -> None:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TaskRecord._meta.db_table)
    names = {name for name, info in constraints.items() if info["unique"]}
    assert {"cronrunner_task_unique_key", "cronrunner_task_concurrency_slot"} <= names
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'cronrunner_task_unique_key'"
            )
            (definition,) = cursor.fetchone()
        assert "WHERE (unique_key IS NOT NULL)" in definition
