"""The database's clock: the one time every host sharing a database agrees on."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connections

from cronrunner.clock import Clock, SystemClock

#: How long a process other than a run (a web server, a shell) trusts a reading before asking
#: the database again: long enough to cost nothing per request, short enough that a host
#: clock that was stepped is noticed within the minute.
SHARED_RESYNC_SECONDS = 60.0

#: The statement that reads the server's current instant. PostgreSQL's now() is when the
#: transaction began, so clock_timestamp(); MySQL's NOW() is in the session's time zone.
_CURRENT_INSTANT = {"postgresql": "SELECT clock_timestamp()", "mysql": "SELECT UTC_TIMESTAMP(6)"}


def read_database_time(using: str) -> datetime | None:
    """Return the database server's current instant (aware, UTC), or None when the database has
    no clock of its own (SQLite lives on this host and uses its clock)."""
    connection = connections[using]
    sql = _CURRENT_INSTANT.get(connection.vendor)
    if sql is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(sql)
        (value,) = cursor.fetchone()
    if not isinstance(value, datetime):
        raise TypeError(f"{sql!r} returned {value!r}, not a datetime.")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _Anchor:
    database_time: datetime
    monotonic: float
    #: The database's clock minus this host's, in seconds.
    offset: float


class DatabaseClock:
    """Tell the database's time: one reading of it, carried forward on this host's monotonic
    clock, so a host whose wall clock is wrong, or is stepped mid-run, still agrees with the
    others; `resync` seconds after a reading the database is asked again (None: never)."""

    def __init__(self, using: str, base: Clock | None = None, resync: float | None = None) -> None:
        self.using = using
        self._base = base or SystemClock()
        self._resync = resync
        self._anchor: _Anchor | None = None

    def now(self) -> datetime:
        anchor = self._current_anchor()
        return anchor.database_time + timedelta(seconds=self._base.monotonic() - anchor.monotonic)

    def monotonic(self) -> float:
        return self._base.monotonic()

    def sleep(self, seconds: float) -> None:
        self._base.sleep(seconds)

    @property
    def offset(self) -> float:
        """Return how far the database's clock is ahead of this host's, in seconds."""
        return self._current_anchor().offset

    def _current_anchor(self) -> _Anchor:
        anchor = self._anchor
        if anchor is None or (
            self._resync is not None and self._base.monotonic() - anchor.monotonic > self._resync
        ):
            anchor = self._anchor = self._read()
        return anchor

    def _read(self) -> _Anchor:
        before = self._base.monotonic()
        host_time = self._base.now()
        database_time = read_database_time(self.using)
        after = self._base.monotonic()
        if database_time is None:
            return _Anchor(host_time, before, 0.0)
        # The server read its clock somewhere within the round trip. Taking the reading as made
        # when the answer arrived keeps this clock behind the database's by at most the round
        # trip, never ahead: nothing is claimed, recovered or fired early, and a task enqueued
        # before a run starts is always due for that run.
        offset = (database_time - host_time).total_seconds() - (after - before)
        return _Anchor(database_time, after, offset)


_shared: dict[str, DatabaseClock] = {}
_shared_lock = threading.Lock()


def database_now(using: str) -> datetime:
    """Return the database's current time, as this process last read it and carried forward;
    for enqueue, the admin and the status commands."""
    with _shared_lock:
        clock = _shared.get(using)
        if clock is None:
            clock = _shared[using] = DatabaseClock(using, resync=SHARED_RESYNC_SECONDS)
    return clock.now()
