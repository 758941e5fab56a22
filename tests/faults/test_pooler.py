"""Runs through a real PgBouncer in transaction pooling mode, as PaaS databases are reached."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from django_cronrunner.models import TaskRecord
from tests.e2e.conftest import REPO, command, subprocess_env
from tests.faults.fleet import enqueue_now
from tests.faults.pooler import Bouncer, pgbouncer

pytestmark = [
    pytest.mark.field,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PgBouncer pools PostgreSQL"),
]

#: The claim, recovery, schedule and fault tests. Left out: the PostgreSQL restart (it would
#: restart the server under the database suite a second time), and test_reconnect.py and the
#: connection-cut test, which end "this connection's" server processes: behind a transaction
#: pooler a client has none, so how many cuts its run sees depends on the pool, not on us.
POOLED_TESTS = [
    "tests/django_cronrunner/test_store.py",
    "tests/django_cronrunner/test_claim_order.py",
    "tests/django_cronrunner/test_concurrency.py",
    "tests/django_cronrunner/test_scheduling.py",
    "tests/django_cronrunner/test_retries.py",
    "tests/faults",
]


@pytest.fixture
def bouncer() -> Iterator[Bouncer]:
    settings = connection.settings_dict
    with pgbouncer(str(settings["HOST"]), int(settings["PORT"]), str(settings["USER"])) as running:
        assert running.setting("pool_mode") == "transaction"
        yield running


def test_the_claim_recovery_schedule_and_fault_tests_pass_through_pgbouncer(
    bouncer: Bouncer,
) -> None:
    database = f"{connection.settings_dict['NAME']}_pooled"
    env = subprocess_env(CRONRUNNER_PG_PORT=str(bouncer.port), CRONRUNNER_PG_TEST_NAME=database)
    try:
        suite = subprocess.run(
            [
                *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--create-db"),
                *("-m", "not field", "-k", "not restart and not connections_cut", *POOLED_TESTS),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert suite.returncode == 0, suite.stdout[-5000:] + suite.stderr[-2000:]
        assert " passed" in suite.stdout and " failed" not in suite.stdout
        # Everything went through the pooler, not around it.
        assert bouncer.transactions(database) > 1000
    finally:
        _drop(database)


def test_several_runners_at_once_through_pgbouncer_run_each_task_once(
    bouncer: Bouncer, transactional_db: None, tmp_path: Path
) -> None:
    out = tmp_path / "executions"
    for number in range(300):
        enqueue_now("tests.testapp.tasks.append_line", path=str(out), line=str(number), sleep=0.005)
    env = subprocess_env(CRONRUNNER_PG_PORT=str(bouncer.port))
    runners = [
        subprocess.Popen(
            command("--lock-file", str(tmp_path / f"{n}.lock"), "--max-seconds", "60"),
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for runner in runners:
        _, stderr = runner.communicate(timeout=120)
        assert runner.returncode == 0, stderr
        assert "Traceback" not in stderr
    lines = out.read_text().splitlines()
    assert sorted(lines, key=int) == [str(n) for n in range(300)]
    records = TaskRecord.objects.all()
    assert {record.status for record in records} == {"SUCCESSFUL"}
    assert all(len(record.worker_ids) == 1 for record in records)
    assert len({record.worker_ids[0] for record in records}) > 1  # they really shared the work
    assert bouncer.transactions(str(connection.settings_dict["NAME"])) >= 300


def _drop(database: str) -> None:
    # The pooler kept server connections to it: FORCE ends them (PostgreSQL 13 and later).
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
