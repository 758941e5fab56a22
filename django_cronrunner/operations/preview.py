"""Schedule preview: each schedule's next fire times and the DST changes of the coming year."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cronrunner.dst import dst_effects
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.operations.health import json_ready
from django_cronrunner.operations.status import local_and_utc
from django_cronrunner.scheduling.schedules import parse_schedules

#: Fire times listed per schedule; a minutely schedule would otherwise list thousands.
MAX_FIRES = 10
DST_HORIZON = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class SchedulePreview:
    """What one schedule will do: its next fire times, and DST days that move a slot."""

    name: str
    expression: str
    timezone: str
    fires: list[datetime] = field(default_factory=list)
    #: Whether more fire times fall within the days asked for than are listed.
    more: bool = False
    #: Each DST change that skips or repeats a slot (DstEffect.as_json), with its description.
    dst: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expression": self.expression,
            "timezone": self.timezone,
            "fires": json_ready(self.fires),
            "more": self.more,
            "dst": self.dst,
            "problem": self.problem,
        }


def schedule_previews(
    backend: CronRunnerBackend, now: datetime, days: int = 7
) -> list[SchedulePreview]:
    """Preview every declared schedule in name order; an invalid one carries its problem."""
    specs, errors = parse_schedules(backend)
    declared = backend.config.schedules
    previews = [
        SchedulePreview(
            name=name,
            expression=str(declared[name].get("cron", ""))
            if isinstance(declared[name], dict)
            else "",
            timezone=str(declared[name].get("timezone", ""))
            if isinstance(declared[name], dict)
            else "",
            problem=str(error),
        )
        for name, error in errors.items()
    ]
    for spec in specs:
        fires = spec.cron.slots(now, now + timedelta(days=days), limit=MAX_FIRES + 1)
        effects = dst_effects(spec.cron, now, now + DST_HORIZON)
        previews.append(
            SchedulePreview(
                name=spec.name,
                expression=spec.cron.expression,
                timezone=spec.cron.timezone,
                fires=fires[:MAX_FIRES],
                more=len(fires) > MAX_FIRES,
                dst=[effect.as_json(spec.cron.zone) for effect in effects],
            )
        )
    return sorted(previews, key=lambda preview: preview.name)


def describe_previews(previews: list[SchedulePreview], days: int) -> list[str]:
    """Lay the previews out for a terminal, problems first."""
    lines = [f"PROBLEM: {preview.problem}" for preview in previews if preview.problem]
    if not previews:
        lines.append("No schedules are declared.")
    for preview in previews:
        if preview.problem:
            continue
        lines.append(f"{preview.name}: {preview.expression!r} in {preview.timezone}")
        if not preview.fires:
            lines.append(f"  no fire time in the next {days} days")
        lines.extend(f"  {local_and_utc(fire, preview.timezone)}" for fire in preview.fires)
        if preview.more:
            lines.append(f"  ... and more within {days} days")
        if preview.dst:
            lines.append("  daylight-saving changes in the coming year:")
            lines.extend(f"    {effect['description']}" for effect in preview.dst)
    return lines
