"""SQL for the statements a run makes per task, compiled once instead of per call by the ORM."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connections

from cronrunner.store import Status
from django_cronrunner.models import TaskRecord

#: Building an UPDATE through the ORM costs far more than running it on a local database.
_FIELDS = {field.name: field for field in TaskRecord._meta.concrete_fields}


class RowStatements:
    """Write task rows of one backend on one database with prepared, cached statements."""

    def __init__(self, using: str, backend_name: str) -> None:
        self.using = using
        self.backend_name = backend_name
        self._held_updates: dict[tuple[str, ...], str] = {}

    def assignments(self, changes: Mapping[str, object]) -> tuple[str, list[Any]]:
        """Return `col = %s, ...` for the changed fields and their values as the driver wants."""
        return self._equals(changes, ", "), self._prepared(changes)

    def _equals(self, names: Iterable[str], separator: str) -> str:
        quote = connections[self.using].ops.quote_name
        return separator.join(f"{quote(str(_FIELDS[name].column))} = %s" for name in names)

    def _prepared(self, changes: Mapping[str, object]) -> list[Any]:
        connection = connections[self.using]
        return [
            _FIELDS[name].get_db_prep_save(value, connection) for name, value in changes.items()
        ]

    def update_held(self, pk: object, worker_id: str, changes: Mapping[str, object]) -> int:
        """Change one row only while `worker_id` holds it RUNNING; return the rows changed."""
        # Naming our claim means a run that lost its task (lease expired, recovered
        # elsewhere) changes nothing, and the row count tells it so.
        connection = connections[self.using]
        key = tuple(changes)
        sql = self._held_updates.get(key)
        if sql is None:
            table = connection.ops.quote_name(TaskRecord._meta.db_table)
            columns = self._equals(key, ", ")
            where = self._equals(("id", "backend_name", "status", "claimed_by"), " AND ")
            sql = self._held_updates[key] = f"UPDATE {table} SET {columns} WHERE {where}"
        params = [
            *self._prepared(changes),
            _FIELDS["id"].get_db_prep_value(pk, connection),
            self.backend_name,
            Status.RUNNING.value,
            worker_id,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)
