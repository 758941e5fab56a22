"""Unique tasks: the key equal calls share, and inserting rows (or queueing failed ones again)
so that the database stores at most one pending row per key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeGuard

from django.db import IntegrityError, connections, transaction

from django_cronrunner.errors import ArgumentsError, TaskPathError, UniqueKeyError
from django_cronrunner.models import TaskRecord
from django_cronrunner.storage.results import resolve_task, stored_arguments
from django_cronrunner.task import CronRunnerTask

#: Prefixes of a stored key, saying when the row stops holding it.
UNTIL_STARTED = "s:"
UNTIL_FINISHED = "f:"

#: How often an enqueue tries again when the equal row it collided with stopped being pending
#: before it could be read (it started, or finished, in between).
_ATTEMPTS = 5


def unique_key_of(task: object, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
    """Return the key a row of this call stores, or None if the task is not unique.

    The key is a digest of the task path and either the declared key or the call's JSON
    arguments, so equal calls of one task share it and calls of other tasks never do.
    """
    if not is_unique(task):
        return None
    declared = task.unique_key
    if declared is None:
        material: list[Any] = ["arguments", task.module_path, list(args), dict(kwargs)]
    else:
        try:
            key = declared(*args, **kwargs) if callable(declared) else declared
        except Exception as e:
            raise UniqueKeyError(
                f"The unique_key callable of {task.module_path} raised {type(e).__name__}: {e}"
            ) from e
        if not isinstance(key, str):
            raise UniqueKeyError(
                f"The unique_key callable of {task.module_path} returned {key!r}, not a string."
            )
        material = ["key", task.module_path, key]
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(text.encode()).hexdigest()
    prefix = UNTIL_FINISHED if task.unique_until == "finished" else UNTIL_STARTED
    return prefix + digest


def is_unique(task: object) -> TypeGuard[CronRunnerTask]:
    """Say whether the task's declaration makes it unique."""
    return isinstance(task, CronRunnerTask) and (task.unique or task.unique_key is not None)


def unique_paths(paths: Iterable[str]) -> set[str]:
    """Return those of `paths` whose task is declared unique now; a path that no longer imports
    is not."""
    unique = set()
    for path in paths:
        try:
            if is_unique(resolve_task(path)):
                unique.add(path)
        except TaskPathError:
            continue
    return unique


def key_again(record: TaskRecord) -> str | None:
    """Return the key a stored row of a unique task takes back when it is queued again: from
    its task's declaration now and its stored arguments (a key given to one enqueue through
    `using()` is not stored once the row stops pending, so the declaration is all there is).
    None if the row's arguments are not a JSON list and object: it will fail anyway."""
    try:
        task = resolve_task(record.task_path)
        args, kwargs = stored_arguments(record)
    except (TaskPathError, ArgumentsError):
        return None
    return unique_key_of(task, args, kwargs)


def requeue_holding_key(
    using: str, record: TaskRecord, key: str, requeue: Callable[[], int]
) -> tuple[int, TaskRecord | None]:
    """Queue the stored row of `record` again with `requeue` and give it `key`, both or
    neither; return how many rows were queued again, and the pending row that holds the key
    if another does (the row is then left as it was)."""
    for _ in range(_ATTEMPTS):
        try:
            with transaction.atomic(using=using):
                requeued = requeue()
                if requeued:
                    TaskRecord.objects.using(using).filter(pk=record.pk).update(unique_key=key)
            return requeued, None
        except IntegrityError:
            # The unique index refused the key: an equal task is pending (on PostgreSQL and
            # MariaDB, one another transaction was inserting was waited for first).
            held = holder(using, record.backend_name, key)
            if held is not None:
                return 0, held
            # The holder stopped pending before it could be read: the key is free again.
    raise UniqueKeyError(
        f"Task {record.pk} could not be queued again: its unique key was taken and freed "
        f"{_ATTEMPTS} times in a row by other enqueues."
    )


def ends_at_start(unique_key: str | None) -> bool:
    """Say whether a row holding `unique_key` stops holding it when its attempt starts."""
    return unique_key is not None and unique_key.startswith(UNTIL_STARTED)


def insert_unique(
    using: str,
    records: Sequence[TaskRecord],
    insert: Callable[[Sequence[TaskRecord]], None],
) -> list[tuple[TaskRecord, bool]]:
    """Insert `records` with `insert`, except where an equal row is pending; return, in order,
    each call's row and whether it is new.

    Calls of one batch with one key share the first one's row. Keyed rows are written under a
    savepoint, in the order of their keys: the unique index refuses a key another transaction
    holds (waiting for it to commit or roll back first), and the enqueue then reads that row
    instead.
    """
    firsts: dict[str, TaskRecord] = {}
    fresh: list[TaskRecord] = []
    for record in records:
        key = record.unique_key
        if key is None or key not in firsts:
            fresh.append(record)
            if key is not None:
                firsts[key] = record
    # Keys taken in one order by every enqueue: two batches holding keys the other waits for
    # would deadlock (PostgreSQL and MariaDB abort one, failing its enqueue).
    fresh.sort(key=lambda record: record.unique_key or "")
    stored: dict[str, tuple[TaskRecord, bool]] = {}
    try:
        with transaction.atomic(using=using), connections[using].wrap_database_errors:
            insert(fresh)
    except IntegrityError:
        # Some key is held: one row at a time, each under its own savepoint.
        if any(record.unique_key is None for record in fresh):
            plain = [record for record in fresh if record.unique_key is None]
            insert(plain)
        for record in fresh:
            if record.unique_key is not None:
                stored[record.unique_key] = _insert_or_find(using, record, insert)
    else:
        stored = {key: (record, True) for key, record in firsts.items()}
    placed: list[tuple[TaskRecord, bool]] = []
    for record in records:
        if record.unique_key is None:
            placed.append((record, True))
            continue
        row, new = stored[record.unique_key]
        placed.append((row, new and row is record))
    return placed


def _insert_or_find(
    using: str, record: TaskRecord, insert: Callable[[Sequence[TaskRecord]], None]
) -> tuple[TaskRecord, bool]:
    """Insert one keyed row, or return the pending row that holds its key."""
    for _ in range(_ATTEMPTS):
        try:
            with transaction.atomic(using=using), connections[using].wrap_database_errors:
                insert([record])
            return record, True
        except IntegrityError:
            held = holder(using, record.backend_name, record.unique_key)
            if held is not None:
                return held, False
            # The holder stopped pending before it could be read: the key is free again.
    raise UniqueKeyError(
        f"Task {record.task_path} could not be enqueued: its unique key was taken and freed "
        f"{_ATTEMPTS} times in a row by other enqueues."
    )


def holder(using: str, backend_name: str, unique_key: str | None) -> TaskRecord | None:
    """Return the row that holds `unique_key`, if one does."""
    if unique_key is None:
        return None
    return (
        TaskRecord.objects.using(using)
        .filter(backend_name=backend_name, unique_key=unique_key)
        .first()
    )
