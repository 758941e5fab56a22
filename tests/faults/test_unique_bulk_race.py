"""Unique tasks under real races: processes released at one instant enqueue batches
(enqueue_many) of the same unique calls, also in opposite orders; each key is stored once,
every call gets its row, and no batch deadlocks with another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from django_cronrunner.models import TaskRecord
from tests.e2e.conftest import REPO, subprocess_env, wait_for
from tests.testapp.tasks import reindex_page

pytestmark = pytest.mark.django_db(transaction=True)

ENQUEUE_AT_THE_SIGNAL = """
import os, sys, time, django
django.setup()
from django_cronrunner.bulk import enqueue_many
from tests.testapp.tasks import reindex_page
pages, ready, go = [int(page) for page in sys.argv[1].split(",")], sys.argv[2], sys.argv[3]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
results = enqueue_many(reindex_page, args=[(page,) for page in pages])
print(" ".join(f"{page}={result.id}" for page, result in zip(pages, results)))
"""

PROCESSES = 8
#: Enough keys per batch that batches taking them in opposite orders overlap.
KEYS = 300


def race(tmp_path: Path, batches: list[str]) -> list[dict[str, str]]:
    """Start one process per batch, release them together; return each one's ids by page."""
    go = tmp_path / "go"
    processes = []
    for n, batch in enumerate(batches):
        ready = tmp_path / f"ready-{n}"
        processes.append(
            (
                ready,
                subprocess.Popen(
                    [sys.executable, "-c", ENQUEUE_AT_THE_SIGNAL, batch, str(ready), str(go)],
                    cwd=REPO,
                    env=subprocess_env(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    try:
        wait_for(lambda: all(ready.exists() for ready, _ in processes), timeout=60)
        go.touch()
        outputs = [process.communicate(timeout=60) for _, process in processes]
    finally:
        for _, process in processes:
            if process.poll() is None:
                process.kill()
    assert all(process.returncode == 0 for _, process in processes), outputs
    return [dict(pair.split("=") for pair in out.split()) for out, _ in outputs]


def test_processes_bulk_enqueueing_one_unique_key_store_one_row(tmp_path: Path) -> None:
    ids = race(tmp_path, ["77,77,77"] * PROCESSES)
    assert len({each["77"] for each in ids}) == 1
    assert TaskRecord.objects.filter(task_path=reindex_page.module_path).count() == 1


def test_batches_taking_keys_in_opposite_orders_neither_deadlock_nor_duplicate(
    tmp_path: Path,
) -> None:
    pages = [str(page) for page in range(1, KEYS + 1)]
    ids = race(tmp_path, [",".join(pages), ",".join(reversed(pages))] * (PROCESSES // 2))
    for page in pages:
        assert len({each[page] for each in ids}) == 1, page
    assert TaskRecord.objects.filter(task_path=reindex_page.module_path).count() == KEYS
