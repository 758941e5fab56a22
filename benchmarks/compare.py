"""Benchmark django-cronrunner against django-tasks-db on one database and print the figures.

    python benchmarks/compare.py --db sqlite --tasks 2000
    python benchmarks/compare.py --db postgresql
    python benchmarks/compare.py --db mariadb

Measures, for each backend: enqueue throughput (one enqueue() call per task, as views make them),
drain throughput (one in-process batch: run_due_tasks, or db_worker --batch), the cost of a run
that finds nothing to do (wall time and queries), and peak Python memory while draining. The
database is created afresh and dropped at the end; django-tasks-db must be installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

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
        "NAME": "cronrunner_bench",
        "USER": os.environ.get("CRONRUNNER_PG_USER", "postgres"),
        "HOST": os.environ.get("CRONRUNNER_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("CRONRUNNER_PG_PORT", "5432"),
    },
    "mariadb": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "cronrunner_bench",
        "USER": os.environ.get("CRONRUNNER_MYSQL_USER", "root"),
        "HOST": os.environ.get("CRONRUNNER_MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("CRONRUNNER_MYSQL_PORT", "3306"),
        "OPTIONS": {"charset": "utf8mb4"},
    },
}


def configure(vendor: str, lock_dir: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        SECRET_KEY="benchmark",
        INSTALLED_APPS=["django_cronrunner", "django_tasks_db", "benchmarks"],
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


def recreate_database(vendor: str) -> None:
    from django.db import connection

    if vendor == "sqlite":
        return
    with connection._nodb_cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("DROP DATABASE IF EXISTS cronrunner_bench")
        cursor.execute("CREATE DATABASE cronrunner_bench")


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def queries_during(action: Callable[[], object]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured.captured_queries)


def peak_memory(action: Callable[[], object]) -> float:
    tracemalloc.start()
    action()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def measure(name: str, backend: str, drain: Callable[[], object], tasks: int) -> dict[str, str]:
    from django.db import connection

    from benchmarks.tasks import noop

    bound = noop.using(backend=backend)
    enqueue = timed(lambda: [bound.enqueue(number) for number in range(tasks)])
    drained = timed(drain)
    connection.ensure_connection()
    bound.enqueue(0)
    drain()  # warm: nothing of the next measurement is a first-time cost
    empty_seconds = min(timed(drain) for _ in range(5))
    empty_queries = queries_during(drain)
    for number in range(tasks):
        bound.enqueue(number)
    memory = peak_memory(drain)
    return {
        "backend": name,
        "enqueue/s": f"{tasks / enqueue:,.0f}",
        "drain/s": f"{tasks / drained:,.0f}",
        "empty run": f"{empty_seconds * 1000:.1f} ms",
        "empty-run queries": str(empty_queries),
        "peak MB (drain)": f"{memory:.1f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=sorted(DATABASES), default="sqlite")
    parser.add_argument("--tasks", type=int, default=2000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as lock_dir:
        configure(options.db, lock_dir)
        from django.core.management import call_command
        from django.db import connections

        recreate_database(options.db)
        connections.close_all()
        call_command("migrate", verbosity=0)

        from django_cronrunner.runner import run_due_tasks

        rows = [
            measure(
                "django-cronrunner",
                "default",
                lambda: run_due_tasks(max_seconds=3600),
                options.tasks,
            ),
            measure(
                "django-tasks-db",
                "tasksdb",
                lambda: call_command(
                    "db_worker",
                    "--batch",
                    "--no-startup-delay",
                    "--backend",
                    "tasksdb",
                    verbosity=0,
                ),
                options.tasks,
            ),
        ]
    columns = list(rows[0])
    widths = {column: max(len(column), *(len(row[column]) for row in rows)) for column in columns}
    print(f"{options.db}, {options.tasks} tasks, Python {sys.version.split()[0]}")
    print("  ".join(column.ljust(widths[column]) for column in columns))
    for row in rows:
        print("  ".join(row[column].ljust(widths[column]) for column in columns))


if __name__ == "__main__":
    main()
