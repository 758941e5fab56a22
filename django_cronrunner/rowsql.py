"""SQL for the statements a run makes per task, compiled once instead of per call by the ORM."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connections, transaction

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
        self._insert_into: str | None = None

    def insert(self, records: Sequence[TaskRecord]) -> None:
        """Insert new rows: one INSERT, or for several rows COPY on PostgreSQL and executemany
        elsewhere (SQLite runs it in-process; MySQLdb sends one multi-row INSERT)."""
        connection = connections[self.using]
        fields = TaskRecord._meta.concrete_fields
        if self._insert_into is None:
            quote = connection.ops.quote_name
            columns = ", ".join(quote(str(field.column)) for field in fields)
            self._insert_into = f"{quote(TaskRecord._meta.db_table)} ({columns})"
        insert = f"INSERT INTO {self._insert_into} VALUES ({', '.join(['%s'] * len(fields))})"
        copying = len(records) > 1 and connection.vendor == "postgresql"

        def prepared(field: Any, record: TaskRecord) -> Any:
            value = field.get_db_prep_save(field.pre_save(record, True), connection)
            return _json_as_text(value) if copying else value

        first = records[0]
        first_values = [getattr(first, field.attname) for field in fields]
        first_row = [prepared(field, first) for field in fields]
        rows = [first_row]
        for record in records[1:]:
            # Values a row shares with the first (the same object) are prepared only once.
            row = first_row.copy()
            for index, field in enumerate(fields):
                if getattr(record, field.attname) is not first_values[index]:
                    row[index] = prepared(field, record)
            rows.append(row)
        with connection.cursor() as cursor:
            if len(rows) == 1:
                cursor.execute(insert, rows[0])
            elif copying:
                # COPY streams rows without quoting each value into SQL text: twice as fast.
                with cursor.cursor.copy(f"COPY {self._insert_into} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(insert, rows)

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
        sql, params = self._held_update(pk, worker_id, changes)
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)

    def update_two_held(
        self,
        first: tuple[object, Mapping[str, object]],
        second: tuple[object, Mapping[str, object]],
        worker_id: str,
    ) -> tuple[int, int]:
        """Change two held rows, each given as (pk, changes), in one commit; return the rows
        each change matched."""
        connection = connections[self.using]
        if connection.vendor != "postgresql":
            with transaction.atomic(using=self.using):
                return (
                    self.update_held(first[0], worker_id, first[1]),
                    self.update_held(second[0], worker_id, second[1]),
                )
        # One statement is one round trip and one commit: most of what a task costs.
        first_sql, first_params = self._held_update(first[0], worker_id, first[1])
        second_sql, second_params = self._held_update(second[0], worker_id, second[1])
        sql = (
            f"WITH first AS ({first_sql} RETURNING 1), second AS ({second_sql} RETURNING 1) "
            "SELECT (SELECT COUNT(*) FROM first), (SELECT COUNT(*) FROM second)"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*first_params, *second_params])
            matched_first, matched_second = cursor.fetchone()
        return int(matched_first), int(matched_second)

    def _held_update(
        self, pk: object, worker_id: str, changes: Mapping[str, object]
    ) -> tuple[str, list[Any]]:
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
        return sql, params


def _json_as_text(value: Any) -> Any:
    """Return a psycopg JSON value as its text for COPY: encoded once here, where psycopg would
    encode a value the rows share again for every row."""
    from psycopg.types.json import Jsonb  # only PostgreSQL's COPY gets here

    if isinstance(value, Jsonb):
        return (value.dumps or json.dumps)(value.obj)
    return value
