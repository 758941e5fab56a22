"""Dead man's switch pings around real batches, against a local server that records them."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connections
from pytest_django.fixtures import Settings

from cronrunner.errors import StorageUnavailable
from django_cronrunner.monitoring_options import parse_monitoring
from django_cronrunner.run.runner import run_due_tasks
from tests.django_cronrunner.fake_http import fake_service
from tests.testapp.tasks import add, fail

pytestmark = pytest.mark.django_db


def monitor_with(settings: Settings, tmp_path: Path, monitoring: dict[str, Any]) -> None:
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {"lock_file": str(tmp_path / "run.lock"), "monitoring": monitoring}
    settings.TASKS = {**settings.TASKS, "default": default}


def test_a_good_batch_pings_start_then_success_with_its_summary(
    settings: Settings, tmp_path: Path
) -> None:
    with fake_service() as service:
        monitor_with(settings, tmp_path, {"checkins": {"url": f"{service.url}/ping/abc"}})
        add.enqueue(1, 2)
        summary = run_due_tasks(max_seconds=10)
    assert summary.succeeded == 1
    assert [request.path for request in service.requests] == ["/ping/abc/start", "/ping/abc"]
    body = service.requests[1].body.decode()
    assert body.startswith("batch finished: 1 run (1 succeeded, 0 failed)")
    assert "stopped: drained" in body
    assert service.requests[1].headers["user-agent"] == "django-cronrunner"


def test_a_batch_with_a_failed_task_pings_failure(settings: Settings, tmp_path: Path) -> None:
    with fake_service() as service:
        monitor_with(settings, tmp_path, {"checkins": {"url": f"{service.url}/p"}})
        fail.enqueue("boom")
        run_due_tasks(max_seconds=10)
    assert [request.path for request in service.requests] == ["/p/start", "/p/fail"]
    assert b"1 failed" in service.requests[1].body


def test_explicit_urls_cronitor_style(settings: Settings, tmp_path: Path) -> None:
    with fake_service() as service:
        base = f"{service.url}/p/KEY/job"
        monitor_with(
            settings,
            tmp_path,
            {"checkins": {"start": f"{base}?state=run", "success": f"{base}?state=complete"}},
        )
        run_due_tasks(max_seconds=10)
    assert [r.path for r in service.requests] == [
        "/p/KEY/job?state=run",
        "/p/KEY/job?state=complete",
    ]


def test_a_slow_monitor_holds_the_batch_up_by_its_timeout_at_most_and_is_logged_once(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_service() as service:
        service.delay = 3.0
        monitor_with(settings, tmp_path, {"checkins": {"url": service.url, "timeout": 0.3}})
        add.enqueue(1, 2)
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="django_cronrunner"):
            summary = run_due_tasks(max_seconds=10)
        took = time.monotonic() - began
    assert summary.succeeded == 1
    assert took < 0.3 * 2 + 1.0  # two pings, each cut at its timeout
    warnings = [r.getMessage() for r in caplog.records if "ping" in r.getMessage()]
    assert len(warnings) == 1
    # Cut by the thread's bound or by the socket's own timeout, whichever came first.
    assert "no answer within 0.3s" in warnings[0] or "TimeoutError" in warnings[0]


def test_an_unreachable_or_erroring_monitor_never_fails_the_batch(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_service() as service:
        service.status = 500
        monitor_with(settings, tmp_path, {"checkins": {"url": service.url}})
        with caplog.at_level(logging.WARNING, logger="django_cronrunner"):
            run_due_tasks(max_seconds=10)
    assert "HTTP Error 500" in caplog.text
    assert len(caplog.records) == 1  # the start and the success pings failed: one line
    # Nothing listens on port 9 of 127.0.0.1: the connection is refused.
    monitor_with(settings, tmp_path, {"checkins": {"url": "http://127.0.0.1:9/x"}})
    add.enqueue(1, 2)
    assert run_due_tasks(max_seconds=10).succeeded == 1


def test_the_warning_names_the_monitors_host_and_never_its_key(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 9: the ping is refused, and the key must stay out of the log.
    key = "5f2c8c1e-7f3b-4d2a-9a51-0e3c1d2b4a6f"
    monitor_with(settings, tmp_path, {"checkins": {"url": f"http://u:pw@127.0.0.1:9/{key}"}})
    with caplog.at_level(logging.WARNING, logger="django_cronrunner"):
        run_due_tasks(max_seconds=10)
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith("Monitoring ping to http://127.0.0.1:9 failed (")
    assert key not in caplog.text and "pw" not in caplog.text


def test_a_url_ending_in_a_slash_gets_start_and_fail_beside_it() -> None:
    pings = parse_monitoring("default", {"checkins": {"url": "https://hc-ping.com/abc/"}}).checkins
    assert pings is not None
    assert (pings.start, pings.success, pings.failure) == (
        "https://hc-ping.com/abc/start",
        "https://hc-ping.com/abc/",
        "https://hc-ping.com/abc/fail",
    )
    keyed = parse_monitoring("default", {"checkins": {"url": "https://x.io/p/job?k=1"}}).checkins
    assert keyed is not None and keyed.start == "https://x.io/p/job/start?k=1"


def test_a_run_whose_database_is_down_pings_failure_with_the_error_line(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> None:
        raise OperationalError("unable to open database file")

    monkeypatch.setattr(connections["default"], "ensure_connection", refuse)
    with fake_service() as service:
        monitor_with(settings, tmp_path, {"checkins": {"url": f"{service.url}/p"}})
        with pytest.raises(StorageUnavailable):
            run_due_tasks(max_seconds=10)
    [ping] = service.requests
    assert ping.path == "/p/fail"
    body = ping.body.decode()
    assert body.startswith("run failed before its batch started: The database 'default' ")
    assert "unable to open database file" in body and "\n" not in body


def test_a_batch_that_fails_after_it_started_pings_failure_once(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_cronrunner.storage.store import DatabaseTaskStore

    def broken(self: DatabaseTaskStore, now: object) -> int:
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(DatabaseTaskStore, "recover", broken)
    with fake_service() as service:
        monitor_with(settings, tmp_path, {"checkins": {"url": f"{service.url}/p"}})
        with pytest.raises(StorageUnavailable):
            run_due_tasks(max_seconds=10)
    assert [request.path for request in service.requests] == ["/p/start", "/p/fail"]
    assert service.requests[1].body.decode().startswith("batch finished: 0 run")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"checkins": {"url": "hc-ping.com/x"}}, "['checkins']['url'] must be an http"),
        ({"checkins": {}}, "needs 'url'"),
        ({"checkins": {"url": "https://x", "timeout": 0}}, "['timeout'] must be a number"),
        ({"pings": {}}, "must be a dict with keys among"),
        ({"sentry": {"margin": 0}}, "['margin'] must be a whole number"),
        ({"textfile": ""}, "['textfile'] must be a file path"),
    ],
)
def test_bad_settings_are_refused_by_name(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        parse_monitoring("default", raw)
    assert message in str(error.value)
    assert str(error.value).startswith("TASKS['default']['OPTIONS']['monitoring']")
