"""What an operator wants to know at a glance: schedules and whether they keep up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.models import ScheduleState
from django_cronrunner.scheduling.schedules import parse_schedules

#: A slot this late with no run having handled it means cron is not running us.
OVERDUE_AFTER = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    """One schedule as declared and as it has fired so far."""

    name: str
    expression: str
    timezone: str
    catch_up: str
    enabled: bool
    paused: bool
    last_slot: datetime | None
    checked_until: datetime | None
    next_slots: list[datetime]
    overdue_slot: datetime | None
    error: str | None = None

    @property
    def overdue(self) -> bool:
        return self.overdue_slot is not None


def schedule_statuses(
    backend: CronRunnerBackend, now: datetime, upcoming: int = 3
) -> list[ScheduleStatus]:
    """Describe every declared schedule, valid or not, in name order."""
    specs, errors = parse_schedules(backend)
    states = {
        state.name: state
        for state in ScheduleState.objects.using(backend.config.database).filter(
            backend_name=backend.alias
        )
    }
    statuses = [
        ScheduleStatus(
            name=name,
            expression=str(backend.config.schedules[name].get("cron", "")),
            timezone=str(backend.config.schedules[name].get("timezone", "")),
            catch_up="",
            enabled=False,
            paused=False,
            last_slot=None,
            checked_until=None,
            next_slots=[],
            overdue_slot=None,
            error=str(error),
        )
        for name, error in errors.items()
    ]
    for spec in specs:
        state = states.get(spec.name)
        paused = state is not None and state.paused
        overdue_slot = None
        if state is not None and spec.enabled and not paused:
            missed = spec.cron.next_slot(state.checked_until)
            if missed <= now - OVERDUE_AFTER:
                overdue_slot = missed
        statuses.append(
            ScheduleStatus(
                name=spec.name,
                expression=spec.cron.expression,
                timezone=spec.cron.timezone,
                catch_up=spec.catch_up.value,
                enabled=spec.enabled,
                paused=paused,
                last_slot=state.last_slot if state else None,
                checked_until=state.checked_until if state else None,
                next_slots=spec.cron.upcoming(now, upcoming),
                overdue_slot=overdue_slot,
            )
        )
    return sorted(statuses, key=lambda status: status.name)


def schedule_problems(statuses: list[ScheduleStatus]) -> list[str]:
    """Name each schedule that is invalid or overdue, one line each."""
    found = []
    for status in statuses:
        if status.error is not None:
            found.append(f"invalid schedule, it never fires: {status.error}")
        elif status.overdue_slot is not None:
            found.append(
                f"schedule {status.name!r} is overdue: its slot "
                f"{local_and_utc(status.overdue_slot, status.timezone)} has not fired"
            )
    return found


def local_and_utc(moment: datetime, zone: str) -> str:
    """Show an instant in a schedule's zone, and in UTC unless that zone already says UTC."""
    local = moment.astimezone(ZoneInfo(zone))
    shown = f"{local:%Y-%m-%d %H:%M %Z}"
    if local.tzname() == "UTC":
        return shown
    return f"{shown} ({moment.astimezone(ZoneInfo('UTC')):%H:%M UTC})"
