"""A host cut off from the database mid-task loses its claim; when it returns it writes nothing."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection

from django_cronrunner.models import TaskRecord
from tests.e2e.conftest import REPO, command, wait_for
from tests.faults.fleet import ONLY_SERVERS, database_time, enqueue_now, host_env, host_run
from tests.faults.netns import Forwarder, Namespace, namespace

pytestmark = [
    pytest.mark.field,
    ONLY_SERVERS,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def host() -> Iterator[tuple[Namespace, Forwarder]]:
    settings = connection.settings_dict
    with namespace() as space:
        forwarder = Forwarder((space.host_address, 0), (settings["HOST"], int(settings["PORT"])))
        try:
            yield space, forwarder
        finally:
            forwarder.close()


def test_a_host_cut_off_mid_task_loses_its_claim_and_writes_nothing_when_it_returns(
    host: tuple[Namespace, Forwarder], tmp_path: Path
) -> None:
    space, forwarder = host
    log, release = tmp_path / "log", tmp_path / "release"
    record = enqueue_now(
        "tests.testapp.fleet_tasks.wait_for_release",
        log=str(log),
        release=str(release),
        most_seconds=120,
    )
    prefix = "CRONRUNNER_PG" if connection.vendor == "postgresql" else "CRONRUNNER_MYSQL"
    address = {f"{prefix}_HOST": space.host_address, f"{prefix}_PORT": str(forwarder.port)}
    cut_off = subprocess.Popen(
        [*space.prefix(), *command("--lock-file", str(tmp_path / "far.lock"), "-v", "2")],
        cwd=REPO,
        env=host_env(**address),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: log.exists() or cut_off.poll() is not None, timeout=60)
        assert cut_off.poll() is None, cut_off.communicate()
        space.cut()
        # Its heartbeats no longer arrive: the lease runs out on the database's clock.
        wait_for(lambda: _lease_expired(record), timeout=40)
        release.touch()  # the second execution needs no wait; the first one ends too
        elsewhere = host_run(timedelta(0), tmp_path / "near.lock", "-v", "2")
        assert elsewhere.returncode == 0, elsewhere.stderr
        assert "1 run (1 succeeded, 0 failed), 1 recovered" in elsewhere.stdout
        record.refresh_from_db()
        done = (record.status, record.return_value, record.finished_at, list(record.worker_ids))
        assert record.status == "SUCCESSFUL" and len(record.worker_ids) == 2
        assert record.errors[0]["exception_class_path"].endswith("RunnerDied")
        space.restore()
        stdout, stderr = cut_off.communicate(timeout=180)
    finally:
        space.restore()
        if cut_off.poll() is None:
            cut_off.kill()
            cut_off.communicate()
    assert cut_off.returncode == 0, stderr
    assert "LOST CLAIM" in stdout + stderr
    assert "0 succeeded" in stdout
    # Fenced by its claim: the returning host changed nothing of what the other host wrote.
    record.refresh_from_db()
    assert (record.status, record.return_value, record.finished_at, record.worker_ids) == done
    assert log.read_text().count("start") == 2


def _lease_expired(record: TaskRecord) -> bool:
    record.refresh_from_db()
    lease = record.lease_expires_at
    return lease is not None and lease < database_time()
