"""Declared schedules: read them from OPTIONS and enqueue each due slot exactly once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction

from cronrunner.errors import CronRunnerError, InvalidSchedule
from cronrunner.schedule import CatchUp, CronSchedule, due_slots, parse_catch_up
from django_cronrunner.compat import InvalidTask, Task, task_enqueued
from django_cronrunner.models import ScheduleState, TaskRecord
from django_cronrunner.storage.results import resolve_task, to_json, to_task_result
from django_cronrunner.storage.transient import retry_while_locked

if TYPE_CHECKING:
    from django_cronrunner.backend import CronRunnerBackend

logger = logging.getLogger("django_cronrunner")

SCHEDULE_KEYS = {
    "task",
    "cron",
    "timezone",
    "args",
    "kwargs",
    "queue_name",
    "priority",
    "catch_up",
    "enabled",
}


@dataclass(frozen=True)
class ScheduleSpec:
    """One valid schedule declaration."""

    name: str
    task: Task[..., Any]
    cron: CronSchedule
    catch_up: CatchUp = CatchUp.LATEST
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True


def parse_schedules(
    backend: CronRunnerBackend,
) -> tuple[list[ScheduleSpec], dict[str, InvalidSchedule]]:
    """Return the backend's valid schedules, and an error for each invalid one by name."""
    raw = backend.config.schedules
    specs: list[ScheduleSpec] = []
    errors: dict[str, InvalidSchedule] = {}
    for name, declaration in raw.items():
        try:
            specs.append(parse_schedule(backend, name, declaration))
        except InvalidSchedule as e:
            errors[name] = e
    return specs, errors


def parse_schedule(backend: CronRunnerBackend, name: str, declaration: object) -> ScheduleSpec:
    """Check one declaration, raising InvalidSchedule that names the schedule and the problem."""
    if not isinstance(declaration, Mapping):
        raise InvalidSchedule(
            f"Schedule {name!r} must be a dict, not {type(declaration).__name__}."
        )
    unknown = set(declaration) - SCHEDULE_KEYS
    if unknown:
        raise InvalidSchedule(f"Schedule {name!r} has unknown keys {sorted(unknown)}.")
    for required in ("task", "cron"):
        if not isinstance(declaration.get(required), str):
            raise InvalidSchedule(f"Schedule {name!r} needs {required!r} as a string.")
    try:
        cron = CronSchedule(
            declaration["cron"], str(declaration.get("timezone", settings.TIME_ZONE))
        )
        catch_up = parse_catch_up(str(declaration.get("catch_up", CatchUp.LATEST)))
        task = resolve_task(declaration["task"])
        args = to_json(list(declaration.get("args", [])), "arguments")
        kwargs = to_json(dict(declaration.get("kwargs", {})), "keyword arguments")
    except (CronRunnerError, TypeError, ValueError) as e:
        raise InvalidSchedule(f"Schedule {name!r}: {e}") from e
    overrides = {key: declaration[key] for key in ("queue_name", "priority") if key in declaration}
    try:
        task = task.using(backend=backend.alias, **overrides)
    except (InvalidTask, TypeError, ValueError) as e:
        raise InvalidSchedule(f"Schedule {name!r}: {e}") from e
    enabled = declaration.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidSchedule(f"Schedule {name!r}: 'enabled' must be True or False.")
    return ScheduleSpec(name, task, cron, catch_up, args, kwargs, enabled)


def fire_due_slots(backend: CronRunnerBackend, now: datetime) -> int:
    """Enqueue every due slot of every enabled schedule; return how many were enqueued."""
    specs, errors = parse_schedules(backend)
    for error in errors.values():
        # The error names the schedule already.
        logger.error("%s It is not fired until this is fixed.", error)
    fired = 0
    for spec in specs:
        if spec.enabled:
            fired += retry_while_locked(partial(_fire, backend, spec, now))
    return fired


def _fire(backend: CronRunnerBackend, spec: ScheduleSpec, now: datetime) -> int:
    using = backend.config.database
    states = ScheduleState.objects.using(using).filter(backend_name=backend.alias, name=spec.name)
    enqueued: list[TaskRecord] = []
    with transaction.atomic(using=using):
        # The row lock makes concurrent runs take turns; the unique slot constraint is what
        # guarantees exactly once even where the lock is not honoured.
        state = states.select_for_update().first()
        if state is None:
            _start_tracking(backend, spec, now)
            return 0
        if now <= state.checked_until:
            return 0
        # A changed expression or zone starts afresh from now, as a new schedule would: slots
        # of the new rule that fell before the change were never promised to anyone.
        changed = (state.expression, state.timezone) != (spec.cron.expression, spec.cron.timezone)
        slots = (
            []
            if state.paused or changed
            else due_slots(spec.cron, state.checked_until, now, spec.catch_up)
        )
        for slot in slots:
            record = _insert_slot(backend, spec, slot, now)
            if record is not None:
                enqueued.append(record)
        state.checked_until = now
        state.expression = spec.cron.expression
        state.timezone = spec.cron.timezone
        if slots:
            state.last_slot = slots[-1]
        state.save(update_fields=["checked_until", "expression", "timezone", "last_slot"])
    for record in enqueued:
        task_enqueued.send(type(backend), task_result=to_task_result(record, spec.task))
    return len(enqueued)


def _start_tracking(backend: CronRunnerBackend, spec: ScheduleSpec, now: datetime) -> None:
    # A new schedule starts with its next slot: nothing before `now` is backfilled.
    try:
        with transaction.atomic(using=backend.config.database):
            ScheduleState.objects.using(backend.config.database).create(
                backend_name=backend.alias,
                name=spec.name,
                expression=spec.cron.expression,
                timezone=spec.cron.timezone,
                checked_until=now,
                created_at=now,
            )
    except IntegrityError:
        pass  # another run started tracking it at the same moment


def _insert_slot(
    backend: CronRunnerBackend, spec: ScheduleSpec, slot: datetime, now: datetime
) -> TaskRecord | None:
    record = backend.new_record(
        spec.task,
        spec.args,
        spec.kwargs,
        now,
        due_at=slot,
        schedule_name=spec.name,
        scheduled_for=slot,
    )
    try:
        with transaction.atomic(using=backend.config.database):
            record.save(using=backend.config.database, force_insert=True)
    except IntegrityError:
        return None  # another run fired this slot first
    return record


def slot_of(task_id: str, using: str = "default") -> tuple[str, datetime] | None:
    """Return (schedule name, slot time) for a task enqueued by a schedule, else None."""
    row = (
        TaskRecord.objects.using(using)
        .filter(pk=task_id, schedule_name__isnull=False)
        .values_list("schedule_name", "scheduled_for")
        .first()
    )
    if row is None or row[0] is None or row[1] is None:
        return None
    return row[0], row[1]
