"""The translation of operational failures into one line, for errors a test cannot provoke on
this machine's servers (a full disk on PostgreSQL or MariaDB); tests/e2e/test_errors.py shows
the others on the real databases."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import IntegrityError, OperationalError

from cronrunner.errors import StorageUnavailable
from django_cronrunner.operations.failures import explain


class FakePsycopgError(Exception):
    """Shaped as psycopg's errors are: an SQLSTATE and a primary message."""

    __module__ = "psycopg.errors"

    def __init__(self, sqlstate: str, primary: str) -> None:
        super().__init__(f"{primary}\nLINE 1: UPDATE ...")
        self.sqlstate = sqlstate
        self.diag = SimpleNamespace(message_primary=primary)


def postgresql(sqlstate: str, primary: str) -> OperationalError:
    error = OperationalError(f"{primary}\nLINE 1: UPDATE ...")
    error.__cause__ = FakePsycopgError(sqlstate, primary)
    return error


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            postgresql("53100", "could not extend file: No space left on device"),
            "The database 'default' is full (could not extend file: No space left on device): "
            "free disk space or raise the database's size limit, then run again.",
        ),
        (
            OperationalError(1114, "The table 'cronrunner_task' is full"),
            "The database 'default' is full (1114: The table 'cronrunner_task' is full): free "
            "disk space or raise the database's size limit, then run again.",
        ),
        (
            OperationalError(1290, "The MariaDB server is running with the --read-only option"),
            "The database 'default' cannot be written (1290: The MariaDB server is running "
            "with the --read-only option): give the user that runs this command write access "
            "(for SQLite, to the file and its directory).",
        ),
        (
            postgresql("42703", 'column "lease_until" does not exist'),
            "The database 'default' lacks django_cronrunner's tables or columns (column "
            '"lease_until" does not exist): run manage.py migrate.',
        ),
        (
            IntegrityError(1062, "Duplicate entry"),
            "The database 'default' cannot be used: 1062: Duplicate entry",
        ),
    ],
    ids=["postgresql full", "mariadb full", "mariadb read-only", "column missing", "other"],
)
def test_database_errors_are_named_by_their_codes(error: Exception, line: str) -> None:
    assert explain(error, "default") == line
    # Wrapped by the runner, the driver's error still decides the line.
    try:
        raise StorageUnavailable("The database 'default' cannot be used") from error
    except StorageUnavailable as wrapped:
        assert explain(wrapped, "default") == line


def test_a_bug_is_not_translated() -> None:
    assert explain(ZeroDivisionError("division by zero"), "default") is None
