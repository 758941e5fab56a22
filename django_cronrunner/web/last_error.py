"""The exception class of a task's last recorded error, computed by the database."""

from __future__ import annotations

from typing import Any

from django.db.models import CharField, F, Func


class LastErrorClass(Func):
    """`errors[-1].exception_class_path`, or NULL for a row without errors.

    Reading it in SQL spares the dashboard and the list filter from fetching every failed
    row's tracebacks. Each database spells "the last element of a JSON list" its own way.
    """

    output_field = CharField()

    def __init__(self, column: str = "errors") -> None:
        super().__init__(F(column))

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"json_extract({sql}, '$[#-1].exception_class_path')", params

    def as_postgresql(
        self, compiler: Any, connection: Any, **extra_context: Any
    ) -> tuple[str, Any]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(({sql}) -> -1 ->> 'exception_class_path')", params

    def as_mysql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        sql, params = compiler.compile(self.source_expressions[0])
        path = f"CONCAT('$[', JSON_LENGTH({sql}) - 1, '].exception_class_path')"
        return (
            f"CASE WHEN JSON_LENGTH({sql}) > 0 THEN JSON_UNQUOTE(JSON_EXTRACT({sql}, {path})) END",
            [*params, *params, *params],
        )
