"""Delete finished task results and batch log rows older than their retention, in small chunks."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import DatabaseError, models, transaction

from django_cronrunner.models import BatchRun, TaskRecord
from django_cronrunner.storage.retention import Retention

CHUNK_SIZE = 500
#: Runs prune at most this often, so an empty run stays a handful of queries.
PRUNE_EVERY = timedelta(hours=1)

logger = logging.getLogger("django_cronrunner")


@dataclass(frozen=True, slots=True)
class PruneResult:
    """How many rows of each kind were (or, in a dry run, would be) deleted."""

    successful: int = 0
    failed: int = 0
    batches: int = 0
    finished: bool = True

    @property
    def total(self) -> int:
        return self.successful + self.failed + self.batches


def prune(
    *,
    using: str,
    backend_name: str,
    retention: Retention,
    now: datetime,
    dry_run: bool = False,
    chunk_size: int = CHUNK_SIZE,
    should_stop: Callable[[], bool] = lambda: False,
) -> PruneResult:
    """Delete expired rows chunk by chunk until done or should_stop() says the budget is spent."""
    tasks = TaskRecord.objects.using(using).filter(backend_name=backend_name)
    sources: dict[str, tuple[models.QuerySet[Any], timedelta | None]] = {
        "successful": (tasks.successful(), retention.successful),
        "failed": (tasks.failed(), retention.failed),
        "batches": (
            BatchRun.objects.using(using).filter(backend_name=backend_name),
            retention.batches,
        ),
    }
    counts = dict.fromkeys(sources, 0)
    for kind, (rows, kept_for) in sources.items():
        if kept_for is None:
            continue
        expired = rows.filter(finished_at__lt=now - kept_for)
        if dry_run:
            counts[kind] = expired.count()
            continue
        while True:
            if should_stop():
                return _result(counts, finished=False)
            deleted = _delete_chunk(using, expired, chunk_size)
            counts[kind] += deleted
            if deleted < chunk_size:
                break
    return _result(counts, finished=True)


def prune_when_due(
    *,
    using: str,
    backend_name: str,
    retention: Retention,
    now: datetime,
    marker: Path,
    should_stop: Callable[[], bool],
) -> PruneResult | None:
    """Prune if the last prune, remembered by `marker`'s mtime, is PRUNE_EVERY old or more."""
    try:
        last = datetime.fromtimestamp(marker.stat().st_mtime, UTC)
    except FileNotFoundError:
        last = None
    if last is not None and now - last < PRUNE_EVERY:
        return None
    marker.touch()
    os.utime(marker, (now.timestamp(), now.timestamp()))
    try:
        result = prune(
            using=using,
            backend_name=backend_name,
            retention=retention,
            now=now,
            should_stop=should_stop,
        )
    except DatabaseError:
        # The batch itself went well; housekeeping that failed is tried again next hour.
        logger.warning("Pruning old task results failed.", exc_info=True)
        return None
    if result.total:
        logger.info(
            "Pruned %d successful and %d failed task results and %d batch log rows%s.",
            result.successful,
            result.failed,
            result.batches,
            "" if result.finished else " (budget spent; the rest next time)",
        )
    return result


def _result(counts: dict[str, int], finished: bool) -> PruneResult:
    return PruneResult(counts["successful"], counts["failed"], counts["batches"], finished)


def _delete_chunk(using: str, expired: models.QuerySet[Any], chunk_size: int) -> int:
    # Deleting by primary keys in short transactions keeps locks brief on a busy table, and
    # works on MySQL, which refuses LIMIT in a subquery of DELETE.
    with transaction.atomic(using=using):
        keys = list(expired.order_by().values_list("pk", flat=True)[:chunk_size])
        if not keys:
            return 0
        expired.model.objects.using(using).filter(pk__in=keys).delete()
    return len(keys)
