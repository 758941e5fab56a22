"""A task's page: each attempt with its error and run, and the timeline of its life."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from django.utils.dateparse import parse_datetime

from cronrunner.store import Status
from django_cronrunner.models import TaskRecord, as_list
from django_cronrunner.web.display import seconds


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One attempt: which run made it, when, and how it ended."""

    number: int | None  # None for an error no attempt made (a cancellation)
    worker_id: str | None
    started_at: datetime | None
    ended_at: datetime | None
    outcome: str  # a Status value, or "CANCELLED"
    exception_class_path: str = ""
    traceback: str = ""

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class Event:
    """One moment of a task's life."""

    at: datetime
    label: str
    status: str  # the badge colour: a Status value
    offset: str = ""  # how long after the first event


def _instant(value: object) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def attempts(record: TaskRecord) -> list[AttemptRow]:
    """Pair each attempt (worker_ids) with the error it recorded, if it failed."""
    errors = [entry for entry in as_list(record.errors) if isinstance(entry, dict)]
    used: set[int] = set()
    rows = []
    workers = as_list(record.worker_ids)
    for index, worker in enumerate(workers):
        match = next(
            (
                n
                for n, entry in enumerate(errors)
                if n not in used and entry.get("worker_id") == worker
            ),
            None,
        )
        last = index == len(workers) - 1
        if match is None:
            ended = record.finished_at if last else None
            outcome = record.status if last else Status.FAILED
            started = record.last_attempted_at if last else None
            rows.append(AttemptRow(index + 1, str(worker), started, ended, outcome))
            continue
        used.add(match)
        entry = errors[match]
        rows.append(
            AttemptRow(
                number=index + 1,
                worker_id=str(worker),
                started_at=_instant(entry.get("attempted_at")),
                ended_at=_instant(entry.get("recorded_at")),
                outcome=Status.FAILED,
                exception_class_path=str(entry.get("exception_class_path", "")),
                traceback=str(entry.get("traceback", "")),
            )
        )
    for n, entry in enumerate(errors):
        if n not in used:  # recorded without an attempt: cancelled before it ran
            rows.append(
                AttemptRow(
                    number=None,
                    worker_id=None,
                    started_at=None,
                    ended_at=_instant(entry.get("recorded_at")),
                    outcome="CANCELLED",
                    exception_class_path=str(entry.get("exception_class_path", "")),
                    traceback=str(entry.get("traceback", "")),
                )
            )
    return rows


def timeline(record: TaskRecord, rows: list[AttemptRow]) -> list[Event]:
    """The task's moments in order: enqueued, its slot, due, each attempt, the claim a run
    holds now, finished."""
    events = [Event(record.enqueued_at, "enqueued", Status.READY)]
    if record.scheduled_for is not None:
        events.append(Event(record.scheduled_for, f"slot of schedule {record.schedule_name}", ""))
    if record.due_at != record.enqueued_at:
        retried = any(row.started_at and row.started_at < record.due_at for row in rows)
        events.append(Event(record.due_at, "due again" if retried else "due", Status.READY))
    for row in rows:
        if row.number is not None and row.started_at is not None:
            events.append(
                Event(row.started_at, f"attempt {row.number} started by {row.worker_id}", "RUNNING")
            )
        if row.ended_at is not None and row.outcome in (Status.FAILED, "CANCELLED"):
            what = "cancelled" if row.number is None else f"attempt {row.number} failed"
            name = row.exception_class_path.rsplit(".", 1)[-1]
            events.append(Event(row.ended_at, f"{what}: {name}", Status.FAILED))
    if record.claimed_at is not None:
        events.append(Event(record.claimed_at, f"claimed by {record.claimed_by}", "RUNNING"))
    if record.finished_at is not None and record.status in (Status.SUCCESSFUL, Status.FAILED):
        events.append(Event(record.finished_at, f"finished {record.status.lower()}", record.status))
    events.sort(key=lambda event: event.at)
    first = events[0].at
    return [
        replace(event, offset=f"+{seconds((event.at - first).total_seconds())}") if n else event
        for n, event in enumerate(events)
    ]
