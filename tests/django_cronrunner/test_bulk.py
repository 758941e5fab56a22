"""enqueue_many: many calls of one task stored at once, all or none, and run like any other."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import transaction

from django_cronrunner.bulk import enqueue_many
from django_cronrunner.compat import InvalidTask, TaskResultStatus, task_enqueued
from django_cronrunner.errors import NotJSONError
from django_cronrunner.models import TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_many_calls_are_stored_in_order_and_run() -> None:
    results = enqueue_many(tasks.add, [(n, n) for n in range(300)])
    assert [result.args for result in results] == [[n, n] for n in range(300)]
    assert {result.status for result in results} == {TaskResultStatus.READY}
    assert len({result.id for result in results}) == 300
    stored = TaskRecord.objects.in_bulk([result.id for result in results])
    assert {record.args[0] for record in stored.values()} == set(range(300))
    assert run_due_tasks(max_seconds=60).succeeded == 300
    assert tasks.add.get_result(results[7].id).return_value == 14


def test_awkward_text_survives_the_bulk_path_unchanged() -> None:
    # COPY's text format escapes tabs, newlines and backslashes; JSON escapes quotes.
    awkward = ["tab\there", "line\nbreak", "back\\slash \\N", 'quote " it', "é ✓ 🙂", ""]
    results = enqueue_many(tasks.send_email, [(text,) for text in awkward])
    stored = TaskRecord.objects.in_bulk([result.id for result in results])
    assert [stored[uuid.UUID(result.id)].args for result in results] == [[text] for text in awkward]


def test_keyword_arguments_alone_or_paired_with_positional_ones() -> None:
    by_keyword = enqueue_many(tasks.add, kwargs=[{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    paired = enqueue_many(tasks.add, [(5,), (6,)], kwargs=[{"b": 1}, {"b": 2}])
    run_due_tasks(max_seconds=60)
    values = [tasks.add.get_result(result.id).return_value for result in by_keyword + paired]
    assert values == [3, 7, 6, 8]


def test_task_options_apply_to_every_row() -> None:
    urgent = tasks.add.using(priority=7, queue_name="default")
    enqueue_many(urgent, [(1, 1), (2, 2)])
    assert set(TaskRecord.objects.values_list("priority", "queue_name")) == {(7, "default")}


def test_one_bad_call_stores_none_of_them() -> None:
    with pytest.raises(NotJSONError, match="arguments cannot be stored as JSON"):
        enqueue_many(tasks.add, [(1, 1), (object(), 2)])
    assert not TaskRecord.objects.exists()


def test_rows_belong_to_the_callers_transaction() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_many(tasks.add, [(1, 1), (2, 2)])
        raise RuntimeError("the view failed")
    assert not TaskRecord.objects.exists()


def test_each_task_sends_task_enqueued() -> None:
    seen: list[str] = []

    def receiver(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append(task_result.id)

    task_enqueued.connect(receiver)
    try:
        results = enqueue_many(tasks.add, [(1, 1), (2, 2), (3, 3)])
    finally:
        task_enqueued.disconnect(receiver)
    assert seen == [result.id for result in results]


def test_nothing_to_enqueue_stores_nothing() -> None:
    assert enqueue_many(tasks.add, []) == []
    assert not TaskRecord.objects.exists()


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (None, None, TypeError, "needs args, kwargs or both"),
        (["ab"], None, TypeError, "one list or tuple of positional arguments per call, not str"),
        (None, [[("a", 1)]], TypeError, "one dict of keyword arguments per call, not list"),
        ([(1,), (2,)], [{"b": 1}], ValueError, "got 2 sets of positional and 1 sets of keyword"),
    ],
)
def test_malformed_calls_are_refused(args: Any, kwargs: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        enqueue_many(tasks.add, args, kwargs=kwargs)
    assert not TaskRecord.objects.exists()


def test_another_backend_is_refused() -> None:
    with pytest.raises(InvalidTask, match="uses ImmediateBackend; enqueue_many"):
        enqueue_many(tasks.add.using(backend="immediate"), [(1, 1)])
