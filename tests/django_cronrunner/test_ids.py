"""Task ids: version 7 UUIDs that sort by creation time, in Python and in every database."""

from __future__ import annotations

import time
import uuid

import pytest

from django_cronrunner.ids import new_task_id
from django_cronrunner.models import TaskRecord
from tests.testapp import tasks


def test_an_id_is_a_version_7_uuid_that_starts_with_its_millisecond() -> None:
    task_id = new_task_id(0x0190_1234_5678)
    assert task_id.version == 7
    assert task_id.variant == uuid.RFC_4122
    assert task_id.int >> 80 == 0x0190_1234_5678


def test_ids_sort_by_their_millisecond_and_never_repeat() -> None:
    ids = [new_task_id(1_700_000_000_000 + n // 100) for n in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert [task_id.int >> 80 for task_id in sorted(ids)] == [task_id.int >> 80 for task_id in ids]


@pytest.mark.parametrize("unix_ms", [-1, 1 << 48])
def test_a_time_outside_48_bits_is_refused(unix_ms: int) -> None:
    with pytest.raises(ValueError, match="48 bits of milliseconds"):
        new_task_id(unix_ms)


@pytest.mark.django_db(transaction=True)
def test_the_database_orders_tasks_by_id_as_they_were_enqueued() -> None:
    enqueued = []
    for number in range(5):
        enqueued.append(tasks.add.enqueue(number, 0).id)
        time.sleep(0.002)  # a new millisecond: ids within one are in random order
    stored = [str(pk) for pk in TaskRecord.objects.order_by("pk").values_list("pk", flat=True)]
    assert stored == enqueued
