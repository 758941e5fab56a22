"""The HTTP trigger's contract through Django's test client: keys, methods, codes, JSON, leaks."""

from __future__ import annotations

import logging
from io import StringIO
from pathlib import Path

import pytest
from django.core import checks
from django.core.handlers.base import BaseHandler
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from cronrunner.lock import RunLock
from django_cronrunner.models import BatchRun, TaskRecord
from django_cronrunner.trigger_options import check_trigger, secret_problem
from django_cronrunner.web.trigger import KEY_HEADER, trigger
from tests.testapp import tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.trigger_urls")]

SECRET = "tR1gg3r-Kq8vZ0pYwX4mN7bL2cD5fG9hJ3sA6eU"
URL = "/cron/trigger/"
#: The JSON keys of every answer that ran (or skipped) a batch.
SUMMARY_KEYS = {
    "ran",
    "succeeded",
    "failed",
    "recovered",
    "scheduled",
    "backlog",
    "stopped",
    "duration",
    "budget",
    "too_long",
}


@pytest.fixture(autouse=True)
def trigger_settings(settings: Settings) -> Settings:
    settings.CRONRUNNER_TRIGGER_SECRET = SECRET
    settings.CRONRUNNER_TRIGGER_MAX_SECONDS = 5
    return settings


def bearer(key: str = SECRET) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def statuses() -> list[str]:
    return list(TaskRecord.objects.order_by("enqueued_at").values_list("status", flat=True))


def test_a_keyed_post_runs_one_batch_and_answers_its_summary(client: Client) -> None:
    tasks.add.enqueue(1, 2)
    tasks.fail.enqueue("boom")
    response = client.post(URL, **bearer())
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    assert set(body) == SUMMARY_KEYS
    assert body["ran"] == 2 and body["succeeded"] == 1 and body["failed"] == 1
    assert body["stopped"] == "drained" and body["backlog"] == 0 and body["budget"] == 5
    assert body["too_long"] == []
    # The same batch log row run_due_tasks stores.
    batch = BatchRun.objects.get()
    assert (batch.tasks_run, batch.stop_reason, batch.max_seconds) == (2, "drained", 5)
    assert sorted(statuses()) == ["FAILED", "SUCCESSFUL"]


def test_our_own_header_carries_the_key_too(client: Client) -> None:
    tasks.add.enqueue(1, 2)
    response = client.post(URL, headers={KEY_HEADER: SECRET})
    assert response.status_code == 200 and response.json()["ran"] == 1


def test_our_header_wins_over_an_authorization_header_a_proxy_owns(client: Client) -> None:
    # Cloud Run checks Cloud Scheduler's OIDC token in Authorization and passes it on.
    response = client.post(
        URL, headers={KEY_HEADER: SECRET}, HTTP_AUTHORIZATION="Bearer eyJhbGciOi.oidc.token"
    )
    assert response.status_code == 200


def test_without_the_setting_there_is_no_endpoint(client: Client, settings: Settings) -> None:
    settings.CRONRUNNER_TRIGGER_SECRET = None
    tasks.add.enqueue(1, 2)
    assert client.post(URL, **bearer()).status_code == 404
    assert client.post(f"{URL}{SECRET}/").status_code == 404
    assert statuses() == ["READY"] and not BatchRun.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": f"Bearer {SECRET}x"},
        {"HTTP_AUTHORIZATION": f"Bearer {SECRET[:-1]}"},
        {"HTTP_AUTHORIZATION": f"Basic {SECRET}"},
        {"HTTP_AUTHORIZATION": "Bearer "},
        {"HTTP_X_CRONRUNNER_KEY": ""},
        {"HTTP_X_CRONRUNNER_KEY": SECRET.upper()},
        # Our header is read first: a right Bearer does not rescue a wrong header.
        {"HTTP_X_CRONRUNNER_KEY": "wrong", "HTTP_AUTHORIZATION": f"Bearer {SECRET}"},
        {"HTTP_X_CRONRUNNER_KEY": "клю́ч-🔑-" + SECRET},
        {"HTTP_X_CRONRUNNER_KEY": "\udcff" + SECRET},
        {"HTTP_AUTHORIZATION": "Bearer " + "k" * 1_000_000},
    ],
    ids=[
        "none",
        "longer",
        "shorter",
        "basic",
        "empty-bearer",
        "empty-header",
        "upper-case",
        "wrong-header-right-bearer",
        "unicode",
        "surrogate",
        "megabyte",
    ],
)
def test_a_wrong_or_missing_key_is_403_runs_nothing_and_logs_a_line(
    client: Client, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    tasks.add.enqueue(1, 2)
    with caplog.at_level(logging.DEBUG):
        response = client.post(URL, **headers)
    assert response.status_code == 403 and response.json() == {"error": "forbidden"}
    assert statuses() == ["READY"] and not BatchRun.objects.exists()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "django_cronrunner.trigger"]
    assert line.startswith("Trigger refused: ") and "from 127.0.0.1" in line
    assert SECRET not in caplog.text


def test_a_key_in_the_path_only_when_allowed(
    client: Client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    tasks.add.enqueue(1, 2)
    with caplog.at_level(logging.DEBUG):
        assert client.post(f"{URL}{SECRET}/").status_code == 404
    assert statuses() == ["READY"]
    settings.CRONRUNNER_TRIGGER_KEY_IN_PATH = True
    with caplog.at_level(logging.DEBUG):
        assert client.post(f"{URL}wrong-{SECRET}/").status_code == 403
        assert client.post(f"{URL}%D0%BA%F0%9F%94%91/").status_code == 403
        response = client.post(f"{URL}{SECRET}/")
    assert response.status_code == 200 and response.json()["ran"] == 1
    # Neither our lines nor django.request's name the path, which holds the secret.
    assert SECRET not in caplog.text


def test_post_only_unless_get_is_allowed(client: Client, settings: Settings) -> None:
    tasks.add.enqueue(1, 2)
    for method in (client.get, client.put, client.delete, client.head, client.options):
        response = method(URL, **bearer())
        assert response.status_code == 405, method
        assert response["Allow"] == "POST"
    assert statuses() == ["READY"]
    settings.CRONRUNNER_TRIGGER_ALLOW_GET = True
    assert client.put(URL, **bearer()).status_code == 405
    response = client.get(URL, **bearer())
    assert response.status_code == 200 and response.json()["ran"] == 1


def test_csrf_is_not_required(settings: Settings) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware"]
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(URL, **bearer()).status_code == 200


def test_a_held_lock_is_success_with_nothing_to_do(client: Client, settings: Settings) -> None:
    tasks.add.enqueue(1, 2)
    lock_file = settings.TASKS["default"]["OPTIONS"]["lock_file"]
    with RunLock(lock_file, started_at=timezone.now()):
        response = client.post(URL, **bearer())
    assert response.status_code == 200
    body = response.json()
    assert body["skipped"] == "locked" and body["stopped"] == "lock held" and body["ran"] == 0
    # The holder's pid, host and lock path stay in the batch log.
    assert str(Path(lock_file).parent) not in response.content.decode()
    assert statuses() == ["READY"]
    assert BatchRun.objects.get().stop_reason == "lock held"


def test_answers_never_hold_arguments_results_or_tracebacks(client: Client) -> None:
    tasks.send_email.enqueue("argument-3f9d@example.com")
    tasks.append_line.enqueue("/dev/null", "result-7c1e")
    tasks.fail.enqueue("exception-text-a4b2")
    tasks.return_object.enqueue()
    response = client.post(URL, **bearer())
    assert response.status_code == 200 and response.json()["failed"] == 2
    text = response.content.decode()
    for leak in ("argument-3f9d", "result-7c1e", "exception-text-a4b2", "Traceback", "object"):
        assert leak not in text


def test_a_budget_spent_reports_the_backlog(client: Client, settings: Settings) -> None:
    settings.CRONRUNNER_TRIGGER_MAX_SECONDS = 0.2
    for n in range(4):
        tasks.append_line.enqueue("/dev/null", str(n), sleep=0.15)
    body = client.post(URL, **bearer()).json()
    assert body["stopped"] == "budget spent"
    assert 1 <= body["ran"] < 4 and body["backlog"] == 4 - body["ran"] and body["budget"] == 0.2


def test_an_oversized_body_is_refused_unread(client: Client, settings: Settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    tasks.add.enqueue(1, 2)
    response = client.post(URL, data=b"x" * 1025, content_type="application/json", **bearer())
    assert response.status_code == 413 and "1024" in response.json()["error"]
    assert statuses() == ["READY"]
    # A scheduler's small event body (EventBridge sends one) is ignored.
    response = client.post(URL, data=b'{"detail": {}}', content_type="application/json", **bearer())
    assert response.status_code == 200


def test_an_unexpected_error_is_a_500_without_traceback(
    client: Client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.DEBUG = True
    settings.CRONRUNNER_TRIGGER_BACKEND = "immediate"
    response = client.post(URL, **bearer())
    assert response.status_code == 500
    assert response.json() == {"error": "the batch could not run; see the server log"}
    assert "not CronRunnerBackend" in caplog.text


def test_atomic_requests_never_wrap_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)
    assert BaseHandler().make_view_atomic(trigger) is trigger


def test_invalid_settings_are_an_error_naming_the_setting(settings: Settings) -> None:
    settings.CRONRUNNER_TRIGGER_MAX_SECONDS = "20"
    (error,) = check_trigger()
    assert error.id == "django_cronrunner.E020" and error.level == checks.ERROR
    assert "CRONRUNNER_TRIGGER_MAX_SECONDS" in error.msg


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("short-Kq8vZ0pYw", "is 15 characters long; it needs at least 32"),
        ("a" * 40, "repeats a few characters"),
        ("ab12" * 10, "repeats a few characters"),
        ("change-me-please-0123456789-abcdefgh", "contains 'change'"),
        ("my-django-insecure-key-0123456789abcdef", "contains 'insecure'"),
        ("Kq8vZ0pYwX4mN7bL2cD5fG9hJ3sA6eU tR1gg3r", "has characters other than"),
        ("Kq8vZ0pYwX4mN7bL2cD5fG9hJ3sA6eU/tR1gg3r", "has characters other than"),
    ],
)
def test_a_short_or_default_looking_secret_fails_the_check(
    settings: Settings, secret: str, problem: str
) -> None:
    settings.CRONRUNNER_TRIGGER_SECRET = secret
    (error,) = check_trigger()
    assert error.id == "django_cronrunner.E021" and problem in error.msg
    assert "secrets.token_urlsafe(32)" in error.hint
    assert error in checks.run_checks()


def test_a_weak_secret_disables_the_trigger_even_without_the_check(
    client: Client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CRONRUNNER_TRIGGER_SECRET = "letmein"
    tasks.add.enqueue(1, 2)
    response = client.post(URL, **bearer("letmein"))
    assert response.status_code == 500 and "unfit" in response.json()["error"]
    assert statuses() == ["READY"]
    assert "Trigger disabled: CRONRUNNER_TRIGGER_SECRET is 7 characters long" in caplog.text
    assert "letmein" not in caplog.text


def test_the_secret_key_is_refused_as_the_trigger_secret(settings: Settings) -> None:
    settings.SECRET_KEY = SECRET
    assert "is the SECRET_KEY" in (secret_problem(SECRET, SECRET) or "")
    (error,) = check_trigger()
    assert error.id == "django_cronrunner.E021"


def test_a_generated_secret_passes_and_a_weak_one_is_reported_once(settings: Settings) -> None:
    assert check_trigger() == []
    settings.CRONRUNNER_TRIGGER_SECRET = "x"
    assert len([m for m in checks.run_checks() if m.id == "django_cronrunner.E021"]) == 1


@pytest.fixture
def in_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run setup from a project's directory, where it finds ./manage.py."""
    (tmp_path / "manage.py").write_text("")
    monkeypatch.chdir(tmp_path)


def setup_output(*args: str) -> str:
    out = StringIO()
    try:
        call_command("cronrunner_setup", *args, stdout=out, stderr=StringIO())
    except SystemExit as e:
        assert e.code == 0, out.getvalue()
    return out.getvalue()


@pytest.mark.usefixtures("in_a_project")
def test_setup_prints_the_url_masked_and_a_curl_line(settings: Settings) -> None:
    settings.CRONRUNNER_TRIGGER_KEY_IN_PATH = True
    out = setup_output("--site-url", "https://shop.example/")
    assert SECRET not in out and SECRET[4:12] not in out
    lines = [line.strip() for line in out.splitlines()]
    assert "URL:    https://shop.example/cron/trigger/ (POST, once a minute)" in lines
    assert (
        f"Header: Authorization: Bearer {SECRET[:4]}********"
        in lines[
            lines.index("URL:    https://shop.example/cron/trigger/ (POST, once a minute)") + 1
        ]
    )
    assert (
        "Plain URL, for schedulers that send no header: "
        f"https://shop.example/cron/trigger/{SECRET[:4]}********/"
    ) in lines
    assert (
        'curl -fsS -X POST --max-time 65 -H "Authorization: Bearer $CRONRUNNER_TRIGGER_SECRET" '
        "https://shop.example/cron/trigger/"
    ) in lines


@pytest.mark.usefixtures("in_a_project")
def test_setup_guesses_the_site_from_allowed_hosts(settings: Settings) -> None:
    settings.ALLOWED_HOSTS = ["*", ".shop.example"]
    assert "URL:    https://shop.example/cron/trigger/ (POST, once a minute)" in setup_output()
    settings.CRONRUNNER_TRIGGER_SECRET = None
    assert "No cron?" not in setup_output()


@pytest.mark.usefixtures("in_a_project")
@pytest.mark.urls("tests.urls")
def test_setup_says_when_the_urlconf_is_not_included() -> None:
    assert "no URLconf includes django_cronrunner.urls" in setup_output()
