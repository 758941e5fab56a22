"""What every benchmark shares: the databases, Django's settings and a fresh schema."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: The database the PostgreSQL and MariaDB benchmarks create and drop; name your own when
#: several people benchmark on one server.
BENCH_NAME = os.environ.get("CRONRUNNER_BENCH_NAME", "cronrunner_bench")

DATABASES = {
    "sqlite": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.mkdtemp(), "bench.sqlite3"),
        # The settings the README recommends for a busy site.
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    },
    "postgresql": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": BENCH_NAME,
        "USER": os.environ.get("CRONRUNNER_PG_USER", "postgres"),
        "HOST": os.environ.get("CRONRUNNER_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("CRONRUNNER_PG_PORT", "5432"),
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": BENCH_NAME,
        "USER": os.environ.get("CRONRUNNER_MYSQL_USER", "root"),
        "HOST": os.environ.get("CRONRUNNER_MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("CRONRUNNER_MYSQL_PORT", "3306"),
        "OPTIONS": {"charset": "utf8mb4"},
    },
}


def argument_parser(doc: str | None) -> argparse.ArgumentParser:
    """Return a parser with --db, described by the first paragraph of `doc`."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--db", choices=sorted(DATABASES), default="sqlite")
    return parser


#: The apps of a typical project: what `django-admin startproject` lists.
CONTRIB_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
]


def configure(vendor: str, lock_dir: str, *, contrib: bool = False) -> None:
    """Set Django up with both backends on `vendor`'s benchmark database, and with Django's
    contrib apps if asked."""
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        SECRET_KEY="benchmark",
        INSTALLED_APPS=[
            *(CONTRIB_APPS if contrib else []),
            "django_cronrunner",
            "django_tasks_db",
            "benchmarks",
        ],
        DATABASES={"default": DATABASES[vendor]},
        TASKS={
            "default": {
                "BACKEND": "django_cronrunner.backend.CronRunnerBackend",
                "OPTIONS": {"lock_file": os.path.join(lock_dir, "bench.lock")},
            },
            "tasksdb": {"BACKEND": "django_tasks_db.DatabaseBackend"},
        },
        LOGGING_CONFIG=None,
    )
    django.setup()


def fresh_database(vendor: str, lock_dir: str, *, contrib: bool = False) -> None:
    """Configure Django, create the benchmark database afresh and migrate it."""
    configure(vendor, lock_dir, contrib=contrib)
    from django.core.management import call_command
    from django.db import connection, connections

    if vendor != "sqlite":
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {BENCH_NAME}")
            cursor.execute(f"CREATE DATABASE {BENCH_NAME}")
        connections.close_all()
    call_command("migrate", verbosity=0)


def child_prelude(vendor: str, lock_dir: str, *, contrib: bool = False) -> str:
    """Return Python source that sets Django up, in a fresh interpreter, on this process's
    benchmark database."""
    database = json.dumps(DATABASES[vendor])
    return (
        "import json, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from benchmarks import common\n"
        f"common.DATABASES[{vendor!r}] = json.loads({database!r})\n"
        f"common.configure({vendor!r}, {lock_dir!r}, contrib={contrib!r})\n"
    )


def python_version() -> str:
    return f"Python {sys.version.split()[0]}"
