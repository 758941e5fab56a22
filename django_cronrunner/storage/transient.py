"""Retry a statement through a transient database failure: a SQLite database another writer
has locked, or a PostgreSQL or MariaDB connection lost mid-run."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

from django_cronrunner.storage.database_errors import ErrorKind, classify

T = TypeVar("T")

#: Failures a new connection does not mend: the statement would fail the same way again.
LASTING = frozenset({ErrorKind.READ_ONLY, ErrorKind.FULL, ErrorKind.MISSING})

#: How long to keep retrying a write that SQLite reports as locked by another writer.
SQLITE_BUSY_PATIENCE = 30.0

#: How long to keep reconnecting when a PostgreSQL or MariaDB connection is lost mid-run.
RECONNECT_PATIENCE = 10.0


def retry_while_locked(write: Callable[[], T], patience: float = SQLITE_BUSY_PATIENCE) -> T:
    """Retry a SQLite write that failed because another process holds the write lock."""
    deadline = time.monotonic() + patience
    delay = 0.01
    while True:
        try:
            return write()
        except OperationalError as e:
            if "locked" not in str(e) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def retry_after_reconnect(
    write: Callable[[], T], connection: BaseDatabaseWrapper, patience: float = RECONNECT_PATIENCE
) -> T:
    """Retry a statement whose connection was lost, on a new connection, for a short while."""
    deadline = time.monotonic() + patience
    delay = 0.1
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as e:
            # Inside a transaction a new connection would silently lose the earlier
            # statements. Outside one, what the driver calls operational (lost connection,
            # server restart, deadlock, lock timeout) is worth one more try, unless the
            # database said it refuses the statement itself.
            if (
                connection.in_atomic_block
                or classify(e) in LASTING
                or time.monotonic() + delay > deadline
            ):
                raise
        # Closing a dead socket may fail; Django drops the connection either way.
        with contextlib.suppress(DatabaseError):
            connection.close()
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
