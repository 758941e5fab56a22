"""Per-key concurrency limits: at most N tasks of one key hold a slot, and only a task that
holds a slot runs.

A slot is a number below the limit, stored in the running row under a unique index (key,
slot, backend): two runs can never hold the same slot, however they race. A row takes its
slot right after its claim and gives it back in the same UPDATE that moves it out of RUNNING
(its outcome, a hand-back or a recovery), so a run killed while holding one loses it with
its claim, and a run that lost its claim (its lease ran out) can no longer free a slot that
now belongs to another run.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from cronrunner.store import Status
from django_cronrunner.errors import ConcurrencyKeyError
from django_cronrunner.models import TaskRecord, TaskRecordQuerySet
from django_cronrunner.task import CronRunnerTask

_COLUMNS = {field.name: field.column for field in TaskRecord._meta.concrete_fields}

#: Longer keys are stored as a digest, so any key fits the column.
_MAX_KEY = 255


def concurrency_of(
    task: object, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[str | None, int | None]:
    """Return the (key, limit) a row of this call stores, or (None, None) for no limit."""
    if not isinstance(task, CronRunnerTask) or task.concurrency_limit is None:
        return None, None
    declared = task.concurrency_key
    if declared is None:
        key = task.module_path
    elif callable(declared):
        try:
            key = declared(*args, **kwargs)
        except Exception as e:
            raise ConcurrencyKeyError(
                f"The concurrency_key callable of {task.module_path} raised {type(e).__name__}: {e}"
            ) from e
        if not isinstance(key, str):
            raise ConcurrencyKeyError(
                f"The concurrency_key callable of {task.module_path} returned {key!r}, not a "
                "string."
            )
    else:
        key = declared
    if len(key) > _MAX_KEY:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key, task.concurrency_limit


def within_limits(due: TaskRecordQuerySet) -> TaskRecordQuerySet:
    """Leave out due rows whose key already has all its slots held, so that they wait in the
    queue without holding back the rows behind them."""
    return due.filter(_below_limit(due.db))


@functools.cache
def _below_limit(alias: str) -> RawSQL:
    # Written once as SQL: built through the ORM (a Subquery of OuterRefs), compiling it on
    # every claim cost about 8% of the drain rate of tasks without a key. Rows without a key
    # pass on the first test, so they never count anything.
    connection = connections[alias]
    quote = connection.ops.quote_name
    table = quote(TaskRecord._meta.db_table)

    def column(name: str, owner: str = table) -> str:
        return f"{owner}.{quote(str(_COLUMNS[name]))}"

    held = quote("cronrunner_held")

    def held_count(owner: str, counted: str) -> str:
        """The slots held of the key of the row `owner`, as rows named `counted`."""
        holding = (
            f"{column('backend_name', counted)} = {column('backend_name', owner)} AND "
            f"{column('concurrency_key', counted)} = {column('concurrency_key', owner)} AND "
            f"{column('concurrency_slot', counted)} IS NOT NULL"
        )
        if connection.vendor == "mysql":
            # No partial index on MariaDB: the slot index holds every row of a key, finished
            # ones included, and the count read them all. Only RUNNING rows hold a slot, and
            # the status index finds those few.
            holding += f" AND {column('status', counted)} = %s"
        return f"(SELECT COUNT(*) FROM {table} {counted} WHERE {holding})"

    params = (Status.RUNNING.value,) if connection.vendor == "mysql" else ()
    below = f"{column('concurrency_limit')} > {held_count(table, held)}"
    if connection.vendor != "mysql":
        # A backlog of a full key is walked past row by row in claim order, and the count ran
        # for each row. The (key, limit) pairs that are full, found once per claim among the
        # few rows in the partial slot index, leave those rows out first; the count still
        # decides for the others.
        pair = ("backend_name", "concurrency_key", "concurrency_limit")
        full = (
            f"({', '.join(column(name) for name in pair)}) NOT IN "
            f"(SELECT {', '.join(column(name, held) for name in pair)} FROM {table} {held} "
            f"WHERE {column('concurrency_slot', held)} IS NOT NULL AND "
            f"{column('concurrency_limit', held)} <= "
            f"{held_count(held, quote('cronrunner_other'))})"
        )
        below = f"{full} AND {below}"
    sql = f"({column('concurrency_key')} IS NULL OR ({below}))"
    return RawSQL(sql, params, output_field=BooleanField())


def take_slots(
    using: str, worker_id: str, records: Sequence[TaskRecord]
) -> tuple[list[TaskRecord], list[TaskRecord]]:
    """Give each claimed row with a key a free slot of it; return the rows that may run and
    those over their limit, which the caller hands back."""
    runnable: list[TaskRecord] = []
    over: list[TaskRecord] = []
    for record in records:
        if (
            record.concurrency_key is None
            or record.concurrency_slot is not None
            or _take_slot(using, worker_id, record)
        ):
            runnable.append(record)
        else:
            over.append(record)
    return runnable, over


def _take_slot(using: str, worker_id: str, record: TaskRecord) -> bool:
    limit = record.concurrency_limit or 1
    rows = TaskRecord.objects.using(using).filter(
        backend_name=record.backend_name, concurrency_key=record.concurrency_key
    )
    held = set(
        rows.filter(concurrency_slot__isnull=False).values_list("concurrency_slot", flat=True)
    )
    for slot in (slot for slot in range(limit) if slot not in held):
        mine = rows.filter(
            pk=record.pk, status=Status.RUNNING, claimed_by=worker_id, claimed_at=record.claimed_at
        )
        try:
            # A savepoint, so that a refused slot leaves an enclosing transaction usable.
            with transaction.atomic(using=using), connections[using].wrap_database_errors:
                taken = mine.update(concurrency_slot=slot)
        except IntegrityError:
            continue  # another run took this slot since we looked
        if not taken:
            return False  # the claim itself was lost
        record.concurrency_slot = slot
        return True
    return False


#: The field changes that give a slot back, for every UPDATE that moves a row out of RUNNING.
FREE_SLOT = {"concurrency_slot": None}
