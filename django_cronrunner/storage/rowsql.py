"""SQL for the statements a run makes per task, compiled once instead of per call by the ORM."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet

from cronrunner.store import Status
from django_cronrunner.models import TaskRecord

#: Building an UPDATE through the ORM costs far more than running it on a local database.
_FIELDS = {field.name: field for field in TaskRecord._meta.concrete_fields}

#: The two times compiled_for builds a query with.
_STAND_INS = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2001, 1, 1, tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class Held:
    """A row this run holds, as one write of it expects to find it: a write matches only the
    claim it belongs to, not a later claim of the same run on the same task."""

    pk: object
    #: The row's claimed_at as the claim set it.
    claimed_at: datetime | None
    #: A start, which a requested stop refuses.
    starting: bool = False

    @property
    def shape(self) -> tuple[bool, bool]:
        """What the row's condition looks like, for the statement cache."""
        return self.claimed_at is None, self.starting


class RowStatements:
    """Write task rows of one backend on one database with prepared, cached statements."""

    def __init__(self, using: str, backend_name: str) -> None:
        self.using = using
        self.backend_name = backend_name
        self._held_updates: dict[Hashable, str] = {}
        self._two_held_updates: dict[Hashable, str] = {}
        self._insert_into: str | None = None
        # Queries compiled once by compiled_for: SQL, parameters, and the index of `now`.
        self._compiled: dict[Hashable, tuple[str, list[Any], int]] = {}

    def compiled_for(
        self, key: Hashable, build: Callable[[datetime], QuerySet[Any]], now: datetime
    ) -> tuple[str, list[Any]]:
        """Return the SQL and parameters of `build(now)`, a query whose one time is `now`,
        compiled through the ORM only the first time for `key`."""
        # Built for two stand-in times, the one parameter that differs is where `now` goes.
        compiled = self._compiled.get(key)
        if compiled is None:
            (sql, params), (_, other) = (
                build(stand_in).query.get_compiler(using=self.using).as_sql()
                for stand_in in _STAND_INS
            )
            pairs = enumerate(zip(params, other, strict=True))
            (slot,) = (index for index, (one, two) in pairs if one != two)
            compiled = self._compiled[key] = (sql, list(params), slot)
        sql, params, slot = compiled
        params = params.copy()
        params[slot] = _FIELDS["due_at"].get_db_prep_value(now, connections[self.using])
        return sql, params

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
            value = self._prepare(field.name, field.pre_save(record, True), connection)
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
        return [self._prepare(name, value, connection) for name, value in changes.items()]

    @staticmethod
    def _prepare(name: str, value: object, connection: BaseDatabaseWrapper) -> Any:
        # None is NULL for every column a run changes (JSON ones included); most changes are
        # None, and Django's preparation of a value costs more than the statement's binding.
        return None if value is None else _FIELDS[name].get_db_prep_save(value, connection)

    def update_held(self, held: Held, worker_id: str, changes: Mapping[str, object]) -> int:
        """Change one row only while `worker_id` holds it under the claim `held` names; return
        the rows changed."""
        sql, params = self._held_update(held, worker_id, changes)
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)

    def update_two_held(
        self,
        first: tuple[Held, Mapping[str, object]],
        second: tuple[Held, Mapping[str, object]],
        worker_id: str,
    ) -> tuple[int, int]:
        """Change two held rows, each given as (held, changes), in one autocommitted
        statement; return the rows each change matched."""
        # One statement is one round trip and one commit: most of what a task costs. An
        # explicit transaction would add BEGIN, a second UPDATE and COMMIT.
        connection = connections[self.using]
        if connection.vendor == "postgresql":
            first_sql, first_params = self._held_update(first[0], worker_id, first[1])
            second_sql, second_params = self._held_update(second[0], worker_id, second[1])
            sql = (
                f"WITH first AS ({first_sql} RETURNING 1), "
                f"second AS ({second_sql} RETURNING 1) "
                "SELECT (SELECT COUNT(*) FROM first), (SELECT COUNT(*) FROM second)"
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, [*first_params, *second_params])
                matched_first, matched_second = cursor.fetchone()
            return int(matched_first), int(matched_second)
        first_pk, second_pk = (self._pk(held.pk) for held, _ in (first, second))
        sql, params = self._two_held_update(first, second, worker_id)
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute(f"{sql} RETURNING {self._id_column()}", params)
                matched = {row[0] for row in cursor.fetchall()}
                return int(first_pk in matched), int(second_pk in matched)
            # MariaDB's UPDATE has no RETURNING, and its row count (found rows) does not say
            # which row matched when only one did.
            cursor.execute(sql, params)
            count = int(cursor.rowcount)
            if count != 1:
                return count // 2, count // 2
            # Only the second row, once started, is still ours under its claim, with the
            # attempt begun now.
            table = connection.ops.quote_name(TaskRecord._meta.db_table)
            columns = ("id", "claimed_by", "claimed_at", "last_attempted_at")
            where = self._equals(columns, " AND ")
            claimed_at, started_at = (
                self._prepare(name, value, connection)
                for name, value in (
                    ("claimed_at", second[0].claimed_at),
                    ("last_attempted_at", second[1]["last_attempted_at"]),
                )
            )
            cursor.execute(
                f"SELECT 1 FROM {table} WHERE {where}",
                [second_pk, worker_id, claimed_at, started_at],
            )
            second_matched = cursor.fetchone() is not None
            return (0, 1) if second_matched else (1, 0)

    def _two_held_update(
        self,
        first: tuple[Held, Mapping[str, object]],
        second: tuple[Held, Mapping[str, object]],
        worker_id: str,
    ) -> tuple[str, list[Any]]:
        # Each column takes the value of whichever row (by id) changes it: CASE id WHEN ...
        connection = connections[self.using]
        rows = [(self._pk(held.pk), held, changes) for held, changes in (first, second)]
        names = list(dict.fromkeys([*first[1], *second[1]]))
        key = tuple((tuple(changes), held.shape) for held, changes in (first, second))
        sql = self._two_held_updates.get(key)
        if sql is None:
            quote = connection.ops.quote_name
            table = quote(TaskRecord._meta.db_table)
            id_column = self._id_column()
            assignments = []
            for name in names:
                column = quote(str(_FIELDS[name].column))
                cases = "".join(
                    f" WHEN {id_column} = %s THEN %s" for _, _, changes in rows if name in changes
                )
                assignments.append(f"{column} = CASE{cases} ELSE {column} END")
            where = self._equals(("backend_name", "status", "claimed_by"), " AND ")
            claims = " OR ".join(
                f"({id_column} = %s AND {self._claim_condition(held)})" for _, held, _ in rows
            )
            sql = self._two_held_updates[key] = (
                f"UPDATE {table} SET {', '.join(assignments)} "
                f"WHERE {id_column} IN (%s, %s) AND {where} AND ({claims})"
            )
        params: list[Any] = []
        for name in names:
            for pk, _, changes in rows:
                if name in changes:
                    params += [pk, self._prepare(name, changes[name], connection)]
        params += [rows[0][0], rows[1][0], self.backend_name, Status.RUNNING.value, worker_id]
        for pk, held, _ in rows:
            params += [pk, *self._claim_params(held)]
        return sql, params

    def _id_column(self) -> str:
        return connections[self.using].ops.quote_name(str(_FIELDS["id"].column))

    def _held_update(
        self, held: Held, worker_id: str, changes: Mapping[str, object]
    ) -> tuple[str, list[Any]]:
        # Naming our claim means a run that lost its task (lease expired, recovered elsewhere,
        # or even claimed again by this same run) changes nothing, and the row count says so.
        key = (tuple(changes), held.shape)
        sql = self._held_updates.get(key)
        if sql is None:
            table = connections[self.using].ops.quote_name(TaskRecord._meta.db_table)
            columns = self._equals(key[0], ", ")
            where = self._equals(("id", "backend_name", "status", "claimed_by"), " AND ")
            sql = self._held_updates[key] = (
                f"UPDATE {table} SET {columns} WHERE {where} AND {self._claim_condition(held)}"
            )
        params = [
            *self._prepared(changes),
            self._pk(held.pk),
            self.backend_name,
            Status.RUNNING.value,
            worker_id,
            *self._claim_params(held),
        ]
        return sql, params

    def _claim_condition(self, held: Held) -> str:
        """Return SQL that is true while `held`'s claim is the row's (and, for a start, while
        no stop was requested)."""
        quote = connections[self.using].ops.quote_name
        claimed = quote(str(_FIELDS["claimed_at"].column))
        condition = f"{claimed} IS NULL" if held.claimed_at is None else f"{claimed} = %s"
        if held.starting:
            condition += f" AND {quote(str(_FIELDS['cancel_requested_at'].column))} IS NULL"
        return condition

    def _claim_params(self, held: Held) -> list[Any]:
        if held.claimed_at is None:
            return []
        connection = connections[self.using]
        return [self._prepare("claimed_at", held.claimed_at, connection)]

    def _pk(self, pk: object) -> Any:
        return _FIELDS["id"].get_db_prep_value(pk, connections[self.using])


def _json_as_text(value: Any) -> Any:
    """Return a psycopg JSON value as its text for COPY: encoded once here, where psycopg would
    encode a value the rows share again for every row."""
    from psycopg.types.json import Jsonb  # only PostgreSQL's COPY gets here

    if isinstance(value, Jsonb):
        return (value.dumps or json.dumps)(value.obj)
    return value
