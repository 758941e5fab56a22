"""Daylight-saving changes ahead: which slots of a schedule they skip or repeat, and what fires."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from croniter import croniter

from cronrunner.schedule import CronSchedule, offset_change

#: Zones change their offset at most a few times a year, never twice within this step.
SCAN_STEP = timedelta(hours=1)
#: Up to this many slots or fire times of a change are listed; more are told as a range.
LISTED = 4


class ChangeKind(StrEnum):
    """Which way a zone's clock moves."""

    SKIPPED = "skipped"  # set forward: a span of wall-clock times never happens
    REPEATED = "repeated"  # set back: a span of wall-clock times happens twice


@dataclass(frozen=True, slots=True)
class ClockChange:
    """One change of a zone's UTC offset."""

    #: The first instant with the new offset.
    at: datetime
    offset_before: timedelta
    offset_after: timedelta

    @property
    def kind(self) -> ChangeKind:
        return ChangeKind.SKIPPED if self.offset_after > self.offset_before else ChangeKind.REPEATED

    @property
    def wall_times(self) -> tuple[datetime, datetime]:
        """Return the naive wall-clock span [start, end) that is skipped or repeated."""
        naive = self.at.astimezone(UTC).replace(tzinfo=None)
        low, high = sorted((self.offset_before, self.offset_after))
        return naive + low, naive + high


class DstAction(StrEnum):
    """What the runner does with a schedule's slots on a day the clock changes."""

    FIRES_AFTER_GAP = "fires_once_after_gap"  # a skipped fixed-hour slot fires when it ends
    NOT_FIRED = "not_fired"  # skipped slots of a schedule that follows elapsed time
    FIRES_ONCE = "fires_once_at_first"  # a repeated fixed-hour slot fires at its first copy
    FIRES_AT_EACH = "fires_at_each"  # a schedule that follows elapsed time fires in both


@dataclass(frozen=True, slots=True)
class DstEffect:
    """What one clock change does to one schedule."""

    change: ClockChange
    #: The schedule's wall-clock times inside the skipped or repeated span.
    affected: list[datetime]
    #: The instants (UTC) the schedule fires at for those wall-clock times.
    fires_at: list[datetime]

    @property
    def action(self) -> DstAction:
        if self.change.kind is ChangeKind.SKIPPED:
            return DstAction.FIRES_AFTER_GAP if self.fires_at else DstAction.NOT_FIRED
        if len(self.fires_at) == len(self.affected):
            return DstAction.FIRES_ONCE
        return DstAction.FIRES_AT_EACH

    def describe(self, zone: ZoneInfo) -> str:
        """Say in one line what happens on that day; many slots are told as a range."""
        start, end = self.change.wall_times
        times = _span([f"{wall:%H:%M}" for wall in self.affected], "slots")
        one = len(self.affected) == 1
        day = f"{self.change.at.astimezone(zone):%Y-%m-%d}"
        if self.change.kind is ChangeKind.SKIPPED:
            what = (
                f"{day}: the clock jumps from {start:%H:%M} to {end:%H:%M}, so {times} "
                f"{'does' if one else 'do'} not exist: "
            )
            if self.fires_at:
                first = self.fires_at[0].astimezone(zone)
                return what + f"fires once at {first:%H:%M %Z} (the first instant after)"
            return (
                what + f"no slot fires for {'it' if one else 'them'} "
                "(the schedule follows elapsed time)"
            )
        what = (
            f"{day}: the clock goes back from {end:%H:%M} to {start:%H:%M}, so {times} "
            f"{'happens' if one else 'happen'} twice: "
        )
        shown = _fires(self.fires_at, zone)
        if self.action is DstAction.FIRES_ONCE:
            return what + f"fires once, at the first ({shown})"
        return what + f"fires at each ({shown}; the schedule follows elapsed time)"

    def as_json(self, zone: ZoneInfo) -> dict[str, object]:
        """Return the effect as JSON-ready fields, with its one-line description."""
        start, end = self.change.wall_times
        skipped = self.change.kind is ChangeKind.SKIPPED
        return {
            "date": f"{self.change.at.astimezone(zone):%Y-%m-%d}",
            "kind": str(self.change.kind),
            "changes_at": self.change.at.astimezone(UTC).isoformat(),
            "clock_from": f"{(start if skipped else end):%H:%M}",
            "clock_to": f"{(end if skipped else start):%H:%M}",
            "affected_slots": len(self.affected),
            "first_slot": f"{self.affected[0]:%H:%M}",
            "last_slot": f"{self.affected[-1]:%H:%M}",
            "action": str(self.action),
            "fires": len(self.fires_at),
            "first_fire": self.fires_at[0].astimezone(UTC).isoformat() if self.fires_at else None,
            "last_fire": self.fires_at[-1].astimezone(UTC).isoformat() if self.fires_at else None,
            "description": self.describe(zone),
        }


def _span(times: list[str], noun: str) -> str:
    """List a few times; say how many and the first and last of more."""
    if len(times) <= LISTED:
        return ", ".join(times)
    return f"{len(times)} {noun}, {times[0]} to {times[-1]},"


def _fires(fires: list[datetime], zone: ZoneInfo) -> str:
    """List a few fire times in the zone; of more, the span on each side of the change."""
    local = [fire.astimezone(zone) for fire in fires]
    if len(local) <= LISTED:
        return ", ".join(f"{fire:%H:%M %Z}" for fire in local)
    spans = [
        f"{group[0]:%H:%M} to {group[-1]:%H:%M} {name}"
        for name, grouped in itertools.groupby(local, key=lambda fire: fire.tzname())
        if (group := list(grouped))
    ]
    return f"{len(local)} times: {', then '.join(spans)}"


def clock_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[ClockChange]:
    """Return every change of zone's UTC offset in (start, end], earliest first."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("Clock changes need aware datetimes.")
    changes: list[ClockChange] = []
    low = start.astimezone(UTC)
    low_offset = low.astimezone(zone).utcoffset()
    end = end.astimezone(UTC)
    while low < end:
        high = min(low + SCAN_STEP, end)
        high_offset = high.astimezone(zone).utcoffset()
        if high_offset != low_offset and low_offset is not None and high_offset is not None:
            changes.append(ClockChange(offset_change(zone, low, high), low_offset, high_offset))
        low, low_offset = high, high_offset
    return changes


def dst_effects(schedule: CronSchedule, start: datetime, end: datetime) -> list[DstEffect]:
    """Return, for each clock change in (start, end], the schedule's slots it skips or repeats
    and the instants they fire at; changes that touch none of its slots are left out."""
    effects = []
    for change in clock_changes(schedule.zone, start, end):
        span_start, span_end = change.wall_times
        affected = _matches(schedule, span_start, span_end)
        if not affected:
            continue
        width = span_end - span_start
        window = schedule.slots(change.at - 2 * width, change.at + 2 * width)
        if change.kind is ChangeKind.SKIPPED:
            # A fixed-hour slot whose wall-clock time does not exist fires at the gap's end; a
            # schedule that follows elapsed time has no such slot (its next one is its own).
            fires = (
                [] if schedule.follows_real_time else [slot for slot in window if slot == change.at]
            )
        else:
            fires = [slot for slot in window if span_start <= _wall(slot, schedule.zone) < span_end]
        effects.append(DstEffect(change, affected, fires))
    return effects


def _matches(schedule: CronSchedule, start: datetime, end: datetime) -> list[datetime]:
    """Return the naive wall-clock times in [start, end) that schedule's fields match."""
    walk = croniter(schedule.fields, start - timedelta(seconds=1))
    found = []
    while (wall := walk.get_next(datetime)) < end:
        found.append(wall)
    return found


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)
