"""JSON only: values no database can store are refused before they reach the database."""

from __future__ import annotations

from typing import Any

import pytest

from django_cronrunner.compat import TaskResultStatus
from django_cronrunner.errors import NotJSONError
from django_cronrunner.models import TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.storage.results import to_json
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "it contains NaN or Infinity, which JSON cannot hold"),
        ({"deep": [float("inf")]}, "it contains NaN or Infinity, which JSON cannot hold"),
        ("a\x00b", "it contains a NUL character"),
        ({"key\x00": 1}, "it contains a NUL character"),
        ({1, 2}, "Unsupported type: <class 'set'>"),
        (b"\xff", "Unsupported value: <class 'bytes'>"),
    ],
)
def test_values_no_database_stores_are_refused_at_enqueue(value: Any, message: str) -> None:
    with pytest.raises(NotJSONError) as caught:
        tasks.add.enqueue(value, 1)
    assert str(caught.value) == f"The task's arguments cannot be stored as JSON: {message}"
    with pytest.raises(NotJSONError, match="keyword arguments"):
        tasks.add.enqueue(a=value, b=1)
    assert not TaskRecord.objects.exists()


def test_deeply_nested_values_are_refused_not_crashing() -> None:
    value: list[Any] = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(NotJSONError, match="arguments cannot be stored as JSON"):
        to_json(value, "arguments")


def test_escapes_that_look_like_nul_are_plain_text() -> None:
    assert to_json({"path": "C:\\u0000", "n": 1.5}, "arguments") == {"path": "C:\\u0000", "n": 1.5}


@pytest.mark.parametrize("kind", ["nan", "inf", "nul"])
def test_a_return_value_no_database_stores_fails_only_that_task(kind: str) -> None:
    bad = tasks.special_value.enqueue(kind)
    after = tasks.add.using(priority=-1).enqueue(1, 1)
    summary = run_due_tasks(max_seconds=30)
    assert (summary.stop_reason, summary.succeeded, summary.failed) == ("drained", 1, 1)
    bad.refresh()
    assert bad.status == TaskResultStatus.FAILED
    (error,) = bad.errors
    assert error.exception_class_path == "django_cronrunner.errors.NotJSONError"
    assert "The task's return value cannot be stored as JSON" in error.traceback
    assert tasks.add.get_result(after.id).return_value == 2
