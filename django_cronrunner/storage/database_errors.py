"""What kind of operational failure a database error is, told by its driver's own code: the
same problem is the same kind on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import sys
from enum import Enum

from django.db import Error as DatabaseError
from django.db import OperationalError

# SQLite's primary result codes (sqlite3.h); extended codes keep them in the low byte.
SQLITE_READONLY = 8
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
# PostgreSQL's SQLSTATE codes (appendix A of its manual).
PG_MISSING = {"42P01", "42703"}  # undefined_table, undefined_column
PG_READ_ONLY = {"25006", "42501"}  # read_only_sql_transaction, insufficient_privilege
PG_FULL = {"53100"}  # disk_full
PG_CANNOT_CONNECT = {"08001", "08006", "57P03", "28P01", "28000"}
# MySQL and MariaDB error numbers.
MYSQL_MISSING = {1146, 1054}  # ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR
MYSQL_READ_ONLY = {1290, 1792, 1142, 1036}  # --read-only, READ ONLY transaction, denied, table
MYSQL_FULL = {1114, 1021}  # ER_RECORD_FILE_FULL, ER_DISK_FULL
MYSQL_CANNOT_CONNECT = {2002, 2003, 2005, 2006, 2013, 1045, 1049}


class ErrorKind(Enum):
    """An operational failure: one a person mends, not the code."""

    MISSING = "django_cronrunner's tables or columns are missing"
    READ_ONLY = "the database refuses writes"
    FULL = "the database or its disk is full"
    SQLITE_CANNOT_OPEN = "the SQLite file cannot be opened"
    CANNOT_CONNECT = "the server cannot be reached"


def classify(error: DatabaseError) -> ErrorKind | None:
    """Say what kind of operational failure `error` is, by its driver's code; None for any
    other error."""
    driver = error.__cause__
    # Not imported here: a run on PostgreSQL or MariaDB need not pay for importing sqlite3,
    # and an error can only come from it once it is imported.
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(driver, sqlite3.Error):
        code = getattr(driver, "sqlite_errorcode", -1) & 0xFF
        text = str(driver)
        if text.startswith(("no such table", "no such column")):
            return ErrorKind.MISSING
        return {
            SQLITE_READONLY: ErrorKind.READ_ONLY,
            SQLITE_FULL: ErrorKind.FULL,
            SQLITE_CANTOPEN: ErrorKind.SQLITE_CANNOT_OPEN,
        }.get(code)
    sqlstate = getattr(driver, "sqlstate", None) or getattr(driver, "pgcode", None)
    if sqlstate is not None or type(driver).__module__.startswith(("psycopg", "psycopg2")):
        if sqlstate in PG_MISSING:
            return ErrorKind.MISSING
        if sqlstate in PG_READ_ONLY:
            return ErrorKind.READ_ONLY
        if sqlstate in PG_FULL:
            return ErrorKind.FULL
        if sqlstate in PG_CANNOT_CONNECT or (
            sqlstate is None and isinstance(error, OperationalError)
        ):
            # psycopg reports a failed connection attempt without an SQLSTATE.
            return ErrorKind.CANNOT_CONNECT
        return None
    number = error.args[0] if error.args and isinstance(error.args[0], int) else None
    if number in MYSQL_MISSING:
        return ErrorKind.MISSING
    if number in MYSQL_READ_ONLY:
        return ErrorKind.READ_ONLY
    if number in MYSQL_FULL:
        return ErrorKind.FULL
    if number in MYSQL_CANNOT_CONNECT:
        return ErrorKind.CANNOT_CONNECT
    return None
