"""Operational failures of the commands, told in one line that names the problem and the fix."""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import Error as DatabaseError
from django.db import connections

from cronrunner.errors import CronRunnerError, LockFileError
from django_cronrunner.storage.database_errors import ErrorKind, classify


def one_line(text: str) -> str:
    """Join a driver's message, which may span several lines, into one."""
    return " ".join(text.split())


def sentence(clause: str) -> str:
    """Start a clause with a capital, to stand as a sentence of its own."""
    return clause[:1].upper() + clause[1:]


def explain(error: BaseException, database: str) -> str | None:
    """Return one line naming the problem behind `error` and its fix, or None for an error
    that is a bug rather than an operational failure (its traceback is what helps then)."""
    for cause in _chain(error):
        if isinstance(cause, DatabaseError):
            return explain_database_error(cause, database)
    if isinstance(error, LockFileError):
        return f"{error} {lock_fix(error)}"
    if isinstance(error, CronRunnerError | ImproperlyConfigured):
        return str(error)
    return None


def lock_fix(error: LockFileError) -> str:
    """Say how to fix a lock file problem: its own remedy, or another lock file."""
    elsewhere = "--lock-file (or OPTIONS['lock_file']) a path in a directory this user can write."
    if error.remedy:
        return f"{error.remedy}, or give {elsewhere}"
    return f"Give {elsewhere}"


def driver_message(error: DatabaseError) -> str:
    """Return the driver's own message on one line, without the SQL some drivers append."""
    driver = error.__cause__
    primary = getattr(getattr(driver, "diag", None), "message_primary", None)
    if primary:
        return one_line(str(primary))  # PostgreSQL: without "LINE 1: <the statement>"
    if len(error.args) == 2 and isinstance(error.args[0], int):
        return one_line(f"{error.args[0]}: {error.args[1]}")  # MySQL: (number, message)
    return one_line(str(error)) or type(error).__name__


def explain_database_error(error: DatabaseError, database: str) -> str:
    """Classify a database error by its driver's code, and say what to do about it."""
    message = driver_message(error)
    kind = classify(error)
    if kind is ErrorKind.MISSING:
        return (
            f"The database {database!r} lacks django_cronrunner's tables or columns "
            f"({message}): run manage.py migrate."
        )
    if kind is ErrorKind.READ_ONLY:
        return (
            f"The database {database!r} cannot be written ({message}): give the user that "
            "runs this command write access (for SQLite, to the file and its directory)."
        )
    if kind is ErrorKind.FULL:
        return (
            f"The database {database!r} is full ({message}): free disk space or raise the "
            "database's size limit, then run again."
        )
    if kind is ErrorKind.SQLITE_CANNOT_OPEN:
        return (
            f"The SQLite database of {database!r} cannot be opened ({message}): "
            f"{sqlite_open_fix(database)}"
        )
    if kind is ErrorKind.CANNOT_CONNECT:
        return (
            f"The database {database!r} cannot be reached ({message}): check that its server "
            f"is running and that DATABASES[{database!r}] (HOST, PORT, USER) points at it."
        )
    return f"The database {database!r} cannot be used: {message}"


def sqlite_path(database: str) -> Path:
    """Return the file that DATABASES[database]['NAME'] names, as SQLite opens it."""
    name = str(connections[database].settings_dict["NAME"])
    return Path(name.removeprefix("file:").split("?", 1)[0]).resolve()


def sqlite_open_fix(database: str) -> str:
    """Say what keeps SQLite from opening the file, as far as the filesystem shows it."""
    path = sqlite_path(database)
    if not path.parent.is_dir():
        return (
            f"its directory {path.parent} does not exist: create it, or correct "
            f"DATABASES[{database!r}]['NAME']."
        )
    # SQLite creates its journal (and in WAL mode its -wal and -shm files) beside the file;
    # access() also answers EROFS for a filesystem mounted read-only, even to root.
    if not os.access(path.parent, os.W_OK) or (
        path.exists() and not os.access(path, os.R_OK | os.W_OK)
    ):
        return (
            f"let the user that runs this command write {path} and its directory, where "
            "SQLite creates its journal (check their owner and modes, and that the filesystem "
            "is not mounted read-only)."
        )
    return f"check DATABASES[{database!r}]['NAME']."


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def backend_database(alias: object) -> str:
    """Return the DATABASES alias of the TASKS backend `alias`, or "default" if it has none."""
    try:
        from django_cronrunner.backend import get_backend

        return get_backend(str(alias or "default")).config.database
    except Exception:
        # The backend itself may be what is broken; the message still names a database.
        return "default"


class OperationsCommand(BaseCommand):
    """A command whose operational failures end in one line on stderr (exit 1); the whole
    traceback is written too at -v 2, and raised with --traceback."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError:
            raise
        except Exception as e:
            line = explain(e, backend_database(options.get("backend")))
            if line is None:
                raise
            if options.get("verbosity", 1) >= 2 and not options.get("traceback"):
                self.stderr.write("".join(traceback.format_exception(e)).rstrip("\n"))
            raise CommandError(line) from e
