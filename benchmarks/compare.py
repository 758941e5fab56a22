"""Benchmark django-cronrunner against django-tasks-db on one database and print the figures.

    python benchmarks/compare.py --db sqlite --tasks 2000 --rounds 3
    python benchmarks/compare.py --db postgresql
    python benchmarks/compare.py --db mariadb

Measures, for each backend: enqueue throughput (one enqueue() call per task, as views make them),
bulk enqueue throughput (enqueue_many(); django-tasks-db has no such API), drain throughput (one
in-process batch: run_due_tasks, or db_worker --batch; the median of --rounds), SQL queries per
drained task, the cost of a run that finds nothing to do (wall time and queries), and peak Python
memory while draining. The database is created afresh and dropped at the end; django-tasks-db
must be installed.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import argument_parser, fresh_database, python_version


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def queries_during(action: Callable[[], object]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # Django keeps the last 9,000 queries only; a drain makes more than that.
    connection.queries_log = deque(maxlen=10_000_000)
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured.captured_queries)


def peak_memory(action: Callable[[], object]) -> float:
    tracemalloc.start()
    action()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def measure(
    backend: str,
    drain: Callable[[], object],
    options: argparse.Namespace,
    bulk: Callable[[Any, int], object] | None = None,
) -> dict[str, float]:
    from django.db import connection

    from benchmarks.tasks import noop

    bound = noop.using(backend=backend)
    tasks = options.tasks

    def refill() -> None:
        for number in range(tasks):
            bound.enqueue(number)

    enqueue = timed(refill)
    drain_rates = [tasks / timed(drain)]
    for _ in range(options.rounds - 1):
        refill()
        drain_rates.append(tasks / timed(drain))
    refill()
    queries_per_task = queries_during(drain) / tasks
    connection.ensure_connection()
    bound.enqueue(0)
    drain()  # warm: nothing of the next measurement is a first-time cost
    empty_seconds = min(timed(drain) for _ in range(5))
    empty_queries = queries_during(drain)
    refill()
    memory = peak_memory(drain)
    bulk_rate = math.nan
    if bulk is not None:
        bulk_rate = options.bulk / timed(lambda: bulk(bound, options.bulk))
        drain()
    return {
        "enqueue/s": tasks / enqueue,
        "enqueue_many/s": bulk_rate,
        "drain/s": statistics.median(drain_rates),
        "queries/task": queries_per_task,
        "empty run ms": empty_seconds * 1000,
        "empty-run queries": empty_queries,
        "peak MB (drain)": memory,
    }


def enqueue_many_noop(task: Any, count: int) -> object:
    from django_cronrunner.bulk import enqueue_many

    return enqueue_many(task, [(number,) for number in range(count)])


FORMATS = {
    "enqueue/s": "{:,.0f}",
    "enqueue_many/s": "{:,.0f}",
    "drain/s": "{:,.0f}",
    "queries/task": "{:.2f}",
    "empty run ms": "{:.1f}",
    "empty-run queries": "{:d}",
    "peak MB (drain)": "{:.1f}",
}


def cell(key: str, value: float) -> str:
    return "n/a" if math.isnan(value) else FORMATS[key].format(value)


def ratio(ours: float, theirs: float) -> str:
    if math.isnan(ours) or math.isnan(theirs) or not theirs:
        return ""
    return f"{ours / theirs:.2f}x"


def table(rows: dict[str, dict[str, float]]) -> list[str]:
    """Format one row per backend and a last row with ours divided by theirs."""
    ours, theirs = rows.values()
    cells = [
        ["backend", *FORMATS],
        *([name, *(cell(key, figures[key]) for key in FORMATS)] for name, figures in rows.items()),
        ["ratio", *(ratio(ours[key], theirs[key]) for key in FORMATS)],
    ]
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per drain")
    parser.add_argument("--rounds", type=int, default=3, help="drains measured; median shown")
    parser.add_argument("--bulk", type=int, default=20_000, help="tasks per enqueue_many()")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as lock_dir:
        fresh_database(options.db, lock_dir)
        from django.core.management import call_command

        from django_cronrunner.run.runner import run_due_tasks

        rows = {
            "django-cronrunner": measure(
                "default",
                lambda: run_due_tasks(max_seconds=3600),
                options,
                bulk=enqueue_many_noop,
            ),
            "django-tasks-db": measure(
                "tasksdb",
                lambda: call_command(
                    "db_worker",
                    "--batch",
                    "--no-startup-delay",
                    "--backend",
                    "tasksdb",
                    verbosity=0,
                ),
                options,
            ),
        }
    print(
        f"{options.db}, {options.tasks} tasks, median of {options.rounds} drains, "
        f"{python_version()}"
    )
    print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
