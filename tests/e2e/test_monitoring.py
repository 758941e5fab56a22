"""The real run_due_tasks pinging a local monitor and writing the textfile; extras stay unloaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from tests.django_cronrunner.fake_http import fake_service
from tests.e2e.conftest import REPO, Runner, subprocess_env
from tests.testapp.tasks import add, fail


@pytest.mark.field
def test_a_cron_run_pings_and_writes_the_textfile(run_command: Runner, tmp_path: Path) -> None:
    textfile = tmp_path / "cronrunner.prom"
    add.enqueue(1, 2)
    fail.enqueue("boom")
    with fake_service() as service:
        monitoring = {"checkins": {"url": f"{service.url}/hc"}, "textfile": str(textfile)}
        result = run_command(
            "--max-seconds",
            "20",
            env=subprocess_env(CRONRUNNER_TEST_MONITORING=json.dumps(monitoring)),
        )
    assert result.returncode == 0, result.stderr
    assert [request.path for request in service.requests] == ["/hc/start", "/hc/fail"]
    assert b"2 run (1 succeeded, 1 failed)" in service.requests[1].body
    families = {
        family.name: family for family in text_string_to_metric_families(textfile.read_text())
    }
    [tasks_run] = families["cronrunner_last_batch_tasks_run"].samples
    assert tasks_run.value == 2


@pytest.mark.field
def test_a_dead_monitor_leaves_the_run_working_and_logs_one_line(run_command: Runner) -> None:
    add.enqueue(1, 2)
    monitoring = {"checkins": {"url": "http://127.0.0.1:9/hc", "timeout": 1}}
    result = run_command(env=subprocess_env(CRONRUNNER_TEST_MONITORING=json.dumps(monitoring)))
    assert result.returncode == 0
    assert "1 run (1 succeeded, 0 failed)" in result.stdout
    assert result.stderr.count("Monitoring ping to http://127.0.0.1:9 failed") == 1
    assert "/hc" not in result.stderr


@pytest.mark.field
def test_a_run_whose_database_cannot_be_opened_pings_failure_with_its_error_line(
    run_command: Runner, tmp_path: Path
) -> None:
    # A database the run cannot reach: a missing directory for SQLite, an unknown database
    # for the servers.
    key, bad = {
        "sqlite": ("CRONRUNNER_SQLITE_NAME", str(tmp_path / "gone" / "db.sqlite3")),
        "postgresql": ("CRONRUNNER_PG_NAME", "cronrunner_no_such_database"),
        "mysql": ("CRONRUNNER_MYSQL_NAME", "cronrunner_no_such_database"),
    }[connection.vendor]
    with fake_service() as service:
        monitoring = {"checkins": {"url": f"{service.url}/hc"}}
        result = run_command(
            env=subprocess_env(**{key: bad}, CRONRUNNER_TEST_MONITORING=json.dumps(monitoring))
        )
    assert result.returncode == 1
    [error] = result.stderr.splitlines()
    [ping] = service.requests
    assert ping.path == "/hc/fail"
    body = ping.body.decode()
    assert body.startswith("run failed before its batch started: ")
    assert body.removeprefix("run failed before its batch started: ") in error
    assert "\n" not in body and "Traceback" not in body


def test_monitoring_asked_for_without_its_extras_leaves_the_run_working(
    transactional_db: None, tmp_path: Path
) -> None:
    # As on a site that never installed the extras: neither module can be imported.
    add.enqueue(1, 2)
    monitoring = {"sentry": {"monitor": "shop"}, "textfile": str(tmp_path / "m.prom")}
    script = (
        "import sys, django; sys.modules['sentry_sdk'] = sys.modules['prometheus_client'] = None;"
        "django.setup(); from django.core.management import call_command;"
        f"call_command('run_due_tasks', '--lock-file', {str(tmp_path / 'l')!r})"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=subprocess_env(CRONRUNNER_TEST_MONITORING=json.dumps(monitoring)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "batch finished: 1 run (1 succeeded, 0 failed)" in result.stdout
    assert result.stderr.splitlines() == [
        f"TASKS['default']['OPTIONS']['monitoring'][{key!r}] is set but {module} is not "
        f"installed (pip install 'django-cronrunner[{extra}]'); the batch runs without it."
        for key, module, extra in [
            ("sentry", "sentry_sdk", "sentry"),
            ("textfile", "prometheus_client", "prometheus"),
        ]
    ]
    assert not (tmp_path / "m.prom").exists()


def test_a_run_without_monitoring_imports_neither_extra(
    transactional_db: None, tmp_path: Path
) -> None:
    script = (
        "import sys, django; django.setup();"
        "from django.core.management import call_command;"
        f"call_command('run_due_tasks', '--lock-file', {str(tmp_path / 'l')!r}, verbosity=0);"
        "print(sorted(m for m in ('sentry_sdk', 'prometheus_client') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
