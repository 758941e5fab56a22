"""A unique constraint over columns that are NULL on most rows, on every database."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import models


class UniqueWhenSet(models.UniqueConstraint):
    """Unique over rows whose `condition` holds: a partial index where the database has them
    (PostgreSQL, SQLite), a plain unique index elsewhere (MariaDB).

    The condition must say that a nullable column of the constraint is set: where it is not,
    the plain index holds the same rows, since NULLs never collide in a unique index. The
    partial index leaves the other rows out, so rows that never set the column (most of them)
    cost no index entry when they are written.
    """

    def _get_condition_sql(self, model: Any, schema_editor: Any) -> str | None:
        if not schema_editor.connection.features.supports_partial_indexes:
            return None
        condition: str | None = super()._get_condition_sql(model, schema_editor)  # type: ignore[misc]
        return condition

    def check(self, model: Any, connection: Any) -> list[checks.CheckMessage]:
        # Django warns that MariaDB ignores the condition: here the plain index is meant.
        return [
            message for message in super().check(model, connection) if message.id != "models.W036"
        ]
