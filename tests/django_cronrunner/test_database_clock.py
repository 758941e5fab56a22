"""The database's clock: read once, carried forward on the host's monotonic clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cronrunner.clock import FakeClock
from django_cronrunner.operations import doctor
from django_cronrunner.run.runner import get_backend
from django_cronrunner.storage.database_clock import DatabaseClock, read_database_time

pytestmark = pytest.mark.django_db

SERVER = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite has no clock but this host's"
)


@SERVER
def test_a_host_five_minutes_fast_tells_the_database_time() -> None:
    host = FakeClock(datetime.now(UTC) + timedelta(minutes=5))
    clock = DatabaseClock("default", host)
    assert abs(clock.offset + 300) < 2
    assert abs((clock.now() - read_database_time_now()).total_seconds()) < 2


@SERVER
def test_the_reading_is_carried_forward_on_the_monotonic_clock_without_asking_again() -> None:
    host = FakeClock(datetime.now(UTC) - timedelta(hours=3))
    clock = DatabaseClock("default", host)
    first = clock.now()
    with CaptureQueriesContext(connection) as queries:
        host.advance(90)
        later = clock.now()
    assert len(queries) == 0
    assert later - first == timedelta(seconds=90)


@SERVER
def test_the_clock_is_never_ahead_of_the_database() -> None:
    # Otherwise a task enqueued just before a run could be not yet due for it.
    clock = DatabaseClock("default")
    for _ in range(50):
        told = clock.now()
        assert told <= read_database_time_now()


@SERVER
def test_a_shared_clock_reads_the_database_again_after_its_resync_interval() -> None:
    host = FakeClock(datetime.now(UTC))
    clock = DatabaseClock("default", host, resync=60)
    clock.now()
    with CaptureQueriesContext(connection) as queries:
        host.advance(59)
        clock.now()
        assert len(queries) == 0
        host.advance(2)
        now = clock.now()
    assert len(queries) == 1
    # Re-anchored on the server's clock, not 61 fake seconds on from the first reading.
    assert abs((now - read_database_time_now()).total_seconds()) < 2


def test_sqlite_reads_nothing_and_keeps_the_hosts_clock() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    host = FakeClock(datetime(2030, 5, 1, tzinfo=UTC))
    clock = DatabaseClock("default", host)
    with CaptureQueriesContext(connection) as queries:
        assert clock.now() == datetime(2030, 5, 1, tzinfo=UTC)
        host.advance(5)
        assert clock.now() == datetime(2030, 5, 1, 0, 0, 5, tzinfo=UTC)
    assert read_database_time("default") is None
    assert clock.offset == 0.0 and len(queries) == 0


@SERVER
def test_setup_warns_when_the_hosts_clock_is_more_than_a_few_seconds_off() -> None:
    backend = get_backend("default")
    fast = doctor.check_clock(backend, FakeClock(datetime.now(UTC) + timedelta(minutes=5)))
    assert fast.level is doctor.Level.WARNING
    assert "ahead of the database 'default'" in fast.message and "chrony" in fast.hint
    slow = doctor.check_clock(backend, FakeClock(datetime.now(UTC) - timedelta(seconds=30)))
    assert slow.level is doctor.Level.WARNING and "behind" in slow.message
    assert doctor.check_clock(backend).level is doctor.Level.OK


def read_database_time_now() -> datetime:
    reading = read_database_time("default")
    assert reading is not None
    return reading
