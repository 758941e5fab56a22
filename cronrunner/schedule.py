"""Cron schedule maths: which instants a schedule fires at, across time zones and DST."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from cronrunner.errors import InvalidSchedule

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# How far a zone's clock can be set back at once. Walking local time from this far before a
# moment finds the slots of a repeated hour that lie after it in real time.
MAX_FOLD = timedelta(hours=3)

ALL_CATCH_UP_CAP = 1000
SKIP_GRACE = timedelta(minutes=5)


class CatchUp(StrEnum):
    """What a schedule does with the slots it missed while nothing ran."""

    LATEST = "latest"
    ALL = "all"
    SKIP = "skip"


def parse_catch_up(value: str) -> CatchUp:
    """Return the catch-up policy named by value."""
    try:
        return CatchUp(value)
    except ValueError as e:
        allowed = ", ".join(repr(policy.value) for policy in CatchUp)
        raise InvalidSchedule(f"Unknown catch-up policy {value!r}; use one of {allowed}.") from e


def load_zone(name: str) -> ZoneInfo:
    """Return the IANA time zone called name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise InvalidSchedule(f"Unknown time zone {name!r}.") from e


@dataclass(frozen=True)
class CronSchedule:
    """A five-field cron expression read in one time zone."""

    expression: str
    timezone: str = "UTC"
    zone: ZoneInfo = field(init=False, repr=False, compare=False)
    fields: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        expression = " ".join(self.expression.split())
        fields = ALIASES.get(expression.lower(), expression)
        if expression.startswith("@") and fields == expression:
            known = ", ".join(ALIASES)
            raise InvalidSchedule(f"Unknown cron alias {expression!r}; use one of {known}.")
        if len(fields.split()) != 5:
            raise InvalidSchedule(
                f"Cron expression {self.expression!r} must have 5 fields "
                "(minute hour day-of-month month day-of-week)."
            )
        try:
            croniter(fields, datetime(2000, 1, 1)).get_next(datetime)
        except CroniterBadDateError as e:
            raise InvalidSchedule(f"Cron expression {self.expression!r} never fires.") from e
        except (CroniterError, CroniterBadCronError, ValueError, KeyError) as e:
            raise InvalidSchedule(f"Invalid cron expression {self.expression!r}: {e}") from e
        object.__setattr__(self, "zone", load_zone(self.timezone))
        object.__setattr__(self, "fields", fields)

    @property
    def follows_real_time(self) -> bool:
        """Say whether the hour field is `*` or a step, so slots track elapsed time."""
        hour = self.fields.split()[1]
        return hour == "*" or "/" in hour

    def next_slot(self, after: datetime) -> datetime:
        """Return the first slot strictly after the given instant."""
        return next(self._slots_after(after))

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """Return the next count slots strictly after the given instant."""
        return list(islice(self._slots_after(after), count))

    def slots(self, after: datetime, until: datetime, limit: int | None = None) -> list[datetime]:
        """Return the slots in (after, until], at most limit of them, earliest first."""
        found: list[datetime] = []
        for slot in self._slots_after(after):
            if slot > until or (limit is not None and len(found) >= limit):
                break
            found.append(slot)
        return found

    def _slots_after(self, after: datetime) -> Iterator[datetime]:
        """Yield every slot after the given instant, in real-time order, each once."""
        if after.tzinfo is None:
            raise ValueError("Schedule maths needs aware datetimes.")
        after = after.astimezone(UTC)
        start = (after - MAX_FOLD).astimezone(self.zone).replace(tzinfo=None, fold=0)
        walk = croniter(self.fields, start)
        # Second copies of a repeated hour come after the first copies that follow them in
        # local time, so they wait here until the walk has passed them in real time.
        later: list[datetime] = []
        last = after
        while True:
            try:
                local: datetime = walk.get_next(datetime)
            except CroniterBadDateError:  # no match within croniter's horizon of years
                yield from (pending for pending in sorted(later) if pending > last)
                return
            primary, repeat = self._instants(local)
            if primary is None:
                continue
            while later and later[0] <= primary:
                pending = heapq.heappop(later)
                if pending > last:
                    last = pending
                    yield pending
            if primary > last:
                last = primary
                yield primary
            if repeat is not None and repeat > after:
                heapq.heappush(later, repeat)

    def _instants(self, local: datetime) -> tuple[datetime | None, datetime | None]:
        """Map one matching wall-clock time to its slot and, in a repeated hour, its second slot."""
        first = local.replace(tzinfo=self.zone, fold=0)
        second = local.replace(tzinfo=self.zone, fold=1)
        first_utc = first.astimezone(UTC)
        if first.utcoffset() == second.utcoffset():
            return first_utc, None
        exists = first_utc.astimezone(self.zone).replace(tzinfo=None) == local
        if exists:  # a repeated wall-clock time
            if self.follows_real_time:
                return first_utc, second.astimezone(UTC)
            return first_utc, None
        if self.follows_real_time:  # skipped by a spring-forward: elapsed time has no such slot
            return None, None
        return self._gap_end(second.astimezone(UTC), first_utc), None

    def _gap_end(self, low: datetime, high: datetime) -> datetime:
        """Return the instant the clock jumps forward, found between two bracketing instants."""
        return offset_change(self.zone, low, high)


def offset_change(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """Return the first instant, to the second, in (low, high] with high's UTC offset in zone."""
    after_offset = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high


def due_slots(
    schedule: CronSchedule,
    since: datetime,
    until: datetime,
    catch_up: CatchUp,
    cap: int = ALL_CATCH_UP_CAP,
    grace: timedelta = SKIP_GRACE,
) -> list[datetime]:
    """Return the slots in (since, until] to fire now under the given catch-up policy."""
    if until <= since:
        return []
    if catch_up is CatchUp.SKIP:
        return schedule.slots(max(since, until - grace), until)
    wanted = 1 if catch_up is CatchUp.LATEST else cap
    return _most_recent(schedule, since, until, wanted)


def _most_recent(
    schedule: CronSchedule, since: datetime, until: datetime, wanted: int
) -> list[datetime]:
    """Return the last `wanted` slots in (since, until] without walking all of a long outage."""
    window = timedelta(hours=1)
    while True:
        start = max(since, until - window)
        found = schedule.slots(start, until)
        if len(found) >= wanted or start == since:
            return found[-wanted:] if found else []
        window *= 8
