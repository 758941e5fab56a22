"""Rows and stores that several Django-layer tests build."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django_cronrunner.models import BatchRun
from django_cronrunner.storage.store import DatabaseTaskStore


def task_store(
    worker: str = "w1",
    lock: str = "lock-a",
    lease: float = 60,
    queues: frozenset[str] | None = None,
) -> DatabaseTaskStore:
    """Return a store over the default database for the default backend."""
    return DatabaseTaskStore(
        using="default",
        backend_name="default",
        worker_id=worker,
        lock_key=lock,
        lease_seconds=lease,
        queues=queues,
    )


def batch_row(finished_at: datetime, stop_reason: str = "drained", **counts: Any) -> BatchRun:
    """Store a three-second batch log row that finished at the given time."""
    return BatchRun.objects.create(
        worker_id="host:1:abc",
        host="host",
        pid=1,
        backend_name="default",
        queues="*",
        started_at=finished_at - timedelta(seconds=3),
        finished_at=finished_at,
        duration=3.0,
        max_seconds=50,
        stop_reason=stop_reason,
        **counts,
    )
