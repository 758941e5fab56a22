"""The HTTP trigger never lets its key reach a log or an error page, whatever it answers."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from cronrunner.errors import StorageUnavailable
from tests.testapp import tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.trigger_urls")]

SECRET = "tR1gg3r-Kq8vZ0pYwX4mN7bL2cD5fG9hJ3sA6eU"
WEAK = "short-Kq8vZ0pYw"
URL = "/cron/trigger/"


def raising(error: Exception) -> Callable[..., object]:
    def fail(*args: object, **kwargs: object) -> object:
        raise error

    return fail


#: Each way the view can answer: the settings, a failure to inject, the call, the status.
CASES: dict[str, tuple[dict[str, object], str | None, Exception | None, str, str, int]] = {
    "ran": ({}, None, None, "post", f"{URL}{SECRET}/", 200),
    "no-trailing-slash": ({}, None, None, "post", f"{URL}{SECRET}", 200),
    "no-secret": ({"CRONRUNNER_TRIGGER_SECRET": None}, None, None, "post", f"{URL}{SECRET}/", 404),
    "path-not-allowed": (
        {"CRONRUNNER_TRIGGER_KEY_IN_PATH": False},
        None,
        None,
        "post",
        f"{URL}{SECRET}/",
        404,
    ),
    "wrong-key": ({}, None, None, "post", f"{URL}{SECRET}x/", 403),
    "deeper-path": ({}, None, None, "post", f"{URL}{SECRET}/more/", 403),
    "get": ({}, None, None, "get", f"{URL}{SECRET}/", 405),
    "body": ({"DATA_UPLOAD_MAX_MEMORY_SIZE": 1}, None, None, "post", f"{URL}{SECRET}/", 413),
    "bad-setting": (
        {"CRONRUNNER_TRIGGER_MAX_SECONDS": "20"},
        None,
        None,
        "post",
        f"{URL}{SECRET}/",
        500,
    ),
    "budget-past-timeout": (
        {"CRONRUNNER_TRIGGER_MAX_SECONDS": 60},
        None,
        None,
        "post",
        f"{URL}{SECRET}/",
        500,
    ),
    "weak-secret": ({"CRONRUNNER_TRIGGER_SECRET": WEAK}, None, None, "post", f"{URL}{WEAK}/", 500),
    "not-our-backend": (
        {"CRONRUNNER_TRIGGER_BACKEND": "immediate"},
        None,
        None,
        "post",
        f"{URL}{SECRET}/",
        500,
    ),
    "batch-failed": ({}, "run_due_tasks", RuntimeError("boom"), "post", f"{URL}{SECRET}/", 500),
    "view-failed": ({}, "presented_key", KeyError("boom"), "post", f"{URL}{SECRET}/", 500),
    "database-down": (
        {},
        "run_due_tasks",
        StorageUnavailable("The database 'default' cannot be used"),
        "post",
        f"{URL}{SECRET}/",
        503,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_answer_logs_or_shows_the_key(
    case: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    overrides, target, error, method, path, status = CASES[case]
    settings.DEBUG = True  # DEBUG's error pages show the path
    settings.CRONRUNNER_TRIGGER_SECRET = SECRET
    settings.CRONRUNNER_TRIGGER_MAX_SECONDS = 5
    settings.CRONRUNNER_TRIGGER_KEY_IN_PATH = True
    for name, value in overrides.items():
        setattr(settings, name, value)
    if target is not None and error is not None:
        monkeypatch.setattr(f"django_cronrunner.web.trigger.{target}", raising(error))
    tasks.add.enqueue(1, 2)
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.DEBUG):
        response = client.generic(method.upper(), path, b"xx", content_type="text/plain")
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    secret = str(settings.CRONRUNNER_TRIGGER_SECRET or SECRET)
    assert secret not in response.content.decode()
    # django.request logs the path (and keeps the request, path included, on its record).
    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == []
    formatter = logging.Formatter("%(message)s")
    for record in caplog.records:
        assert secret not in formatter.format(record), record.name
        assert secret not in repr(vars(record)), record.name
    # Every refusal and failure leaves a line of our own.
    if status != 200:
        assert any(r.name == "django_cronrunner.trigger" for r in caplog.records)
