"""End database connections from another connection, as a server restart or a network cut would."""

from __future__ import annotations

import time

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper


def backend_id(connection: BaseDatabaseWrapper) -> int:
    """Return the server's id for this connection (PostgreSQL pid, MariaDB thread id)."""
    postgresql = connection.vendor == "postgresql"
    query = "SELECT pg_backend_pid()" if postgresql else "SELECT CONNECTION_ID()"
    with connection.cursor() as cursor:
        cursor.execute(query)
        row = cursor.fetchone()
    return int(row[0])


def end_connections(alias: str = "default", *, only: int | None = None) -> int:
    """End the connection `only`, or every other process's connection; return how many."""
    ours = backend_id(connections[alias]) if only is None else None
    killer = connections.create_connection(alias)
    try:
        ids = [only] if only is not None else [i for i in _other_connections(killer) if i != ours]
        with killer.cursor() as cursor:
            for each in ids:
                if killer.vendor == "postgresql":
                    cursor.execute("SELECT pg_terminate_backend(%s)", [each])
                else:
                    cursor.execute(f"KILL {int(each)}")
        _wait_until_gone(killer, ids)
        return len(ids)
    finally:
        killer.close()


def _other_connections(killer: BaseDatabaseWrapper) -> list[int]:
    if killer.vendor == "postgresql":
        query = (
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    else:
        query = (
            "SELECT id FROM information_schema.processlist "
            "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        )
    with killer.cursor() as cursor:
        cursor.execute(query)
        return [int(row[0]) for row in cursor.fetchall()]


def _wait_until_gone(killer: BaseDatabaseWrapper, ids: list[int]) -> None:
    # Both servers end a connection asynchronously; the caller wants it gone.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = set(_other_connections(killer)) & set(ids)
        if not alive:
            return
        time.sleep(0.02)
    raise AssertionError(f"connections {sorted(alive)} outlived their end")
