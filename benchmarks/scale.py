"""Benchmark what a large table and a long drain cost: backlog independence and memory.

    python benchmarks/scale.py --db sqlite
    python benchmarks/scale.py --db postgresql --finished 1000000 --future 100000

Backlog: the drain rate of --tasks no-op tasks on an empty table, then again with --finished
SUCCESSFUL rows and --future rows due tomorrow in it, and the claim query's plan (EXPLAIN).
Before each rate the table is settled as a slowly grown one is: analyzed, and the bulk load's
write-back finished.
Memory: peak RSS of a separate `run_due_tasks` process that finds nothing, and of one that drains
--drain-tasks tasks. The database is created afresh and dropped at the end.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    argument_parser,
    child_prelude,
    fresh_database,
    python_version,
)

CHUNK = 50_000


def fill(total: int, *, due_tomorrow: bool = False) -> None:
    """Enqueue `total` no-op tasks in chunks, optionally due tomorrow."""
    from django.utils import timezone

    from benchmarks.tasks import noop
    from django_cronrunner.bulk import enqueue_many

    task = noop.using(run_after=timezone.now() + timedelta(days=1)) if due_tomorrow else noop
    for start in range(0, total, CHUNK):
        enqueue_many(task, [(n,) for n in range(start, min(total, start + CHUNK))])


def fill_finished(total: int) -> None:
    """Store `total` SUCCESSFUL rows, inserted as such: updating READY rows would leave a
    million dead row versions that a table grown over months never has at once."""
    from django.db import transaction
    from django.utils import timezone

    from benchmarks.tasks import noop
    from django_cronrunner.backend import CronRunnerBackend

    backend = noop.get_backend()
    assert isinstance(backend, CronRunnerBackend)
    now = timezone.now()
    for start in range(0, total, CHUNK):
        records = [
            backend.new_record(
                noop, (n,), {}, now, status="SUCCESSFUL", started_at=now, finished_at=now
            )
            for n in range(start, min(total, start + CHUNK))
        ]
        with transaction.atomic():
            backend.rows.insert(records)


def median_drain_rate(tasks: int, rounds: int = 3) -> float:
    """Return the median of `rounds` drain rates; the database is noisy, a median less so."""
    return statistics.median(drain_rate(tasks) for _ in range(rounds))


def drain_rate(tasks: int) -> float:
    from benchmarks.tasks import noop
    from django_cronrunner.bulk import enqueue_many
    from django_cronrunner.run.runner import run_due_tasks

    enqueue_many(noop, [(n,) for n in range(tasks)])
    started = time.perf_counter()
    summary = run_due_tasks(max_seconds=3600)
    elapsed = time.perf_counter() - started
    assert summary.succeeded == tasks, summary
    return tasks / elapsed


def settle(vendor: str, *, timeout: float = 300.0) -> float:
    """Bring the table to the state of one that grew slowly: fresh planner statistics, and the
    write-back of a bulk load done; return the seconds waited for it.

    A bulk load leaves hundreds of megabytes of dirty pages that the database writes out over
    the next minutes (and InnoDB's purge of the load's undo log); measured meanwhile, a drain
    competes with that for the disk. A table that grew over months has no such debt.
    """
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE cronrunner_task")
            cursor.execute("CHECKPOINT")
        elif vendor == "sqlite":
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            cursor.execute("ANALYZE TABLE cronrunner_task")
            cursor.fetchall()
            _wait_for_innodb_to_go_quiet(cursor, started + timeout)
    return time.perf_counter() - started


def _wait_for_innodb_to_go_quiet(cursor: Any, deadline: float) -> None:
    """Wait until InnoDB has purged the load's undo log and written no page for 3 seconds.

    Dirty pages are no measure: with the default settings an idle server keeps a thousand of
    them indefinitely.
    """
    quiet_since, last_written = time.perf_counter(), -1
    while time.perf_counter() < deadline:
        cursor.execute(
            "SHOW GLOBAL STATUS WHERE Variable_name IN "
            "('Innodb_pages_written', 'Innodb_history_list_length')"
        )
        status = dict(cursor.fetchall())
        written = int(status["Innodb_pages_written"])
        if written != last_written or int(status["Innodb_history_list_length"]) > 100:
            quiet_since, last_written = time.perf_counter(), written
        elif time.perf_counter() - quiet_since >= 3:
            return
        time.sleep(0.5)


def claim_plan() -> str:
    from django.utils import timezone

    from django_cronrunner.models import TaskRecord

    due = TaskRecord.objects.filter(backend_name="default").due(timezone.now())[:32]
    return due.explain()


def peak_rss_mb(vendor: str, lock_dir: str) -> float:
    """Run one batch in a fresh process and return its peak resident memory."""
    script = child_prelude(vendor, lock_dir) + (
        "from django_cronrunner.run.runner import run_due_tasks\n"
        "run_due_tasks(max_seconds=3600)\n"
        # VmHWM, not ru_maxrss: Linux hands a child the peak of the process it was forked
        # from, so ru_maxrss would report this (large) benchmark process instead.
        "print(next(line.split()[1] for line in open('/proc/self/status')"
        " if line.startswith('VmHWM:')))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    return int(output.split()[-1]) / 1024


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--tasks", type=int, default=6000, help="tasks drained per rate")
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--future", type=int, default=100_000)
    parser.add_argument("--drain-tasks", type=int, default=100_000, help="tasks for memory")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as lock_dir:
        fresh_database(options.db, lock_dir)
        from django.db import connections

        empty_rss = peak_rss_mb(options.db, lock_dir)
        fill(options.drain_tasks)
        connections.close_all()
        drain_rss = peak_rss_mb(options.db, lock_dir)

        drain_rate(200)  # warm up: first-time costs are not part of either rate
        settle(options.db)
        empty_rate = median_drain_rate(options.tasks)
        started = time.perf_counter()
        fill_finished(options.finished)
        fill(options.future, due_tomorrow=True)
        filled = time.perf_counter() - started
        settled = settle(options.db)
        full_rate = median_drain_rate(options.tasks)
        plan = claim_plan()

    print(f"{options.db}, {python_version()}")
    print(
        f"memory: peak RSS of an empty run {empty_rss:.1f} MB, of a run draining "
        f"{options.drain_tasks:,} tasks {drain_rss:.1f} MB (+{drain_rss - empty_rss:.1f} MB)"
    )
    print(
        f"backlog: drain {empty_rate:,.0f} tasks/s on an empty table, {full_rate:,.0f} tasks/s "
        f"with {options.finished:,} finished and {options.future:,} future rows "
        f"({full_rate / empty_rate:.0%}; filling took {filled:.0f}s, its write-back {settled:.0f}s)"
    )
    print("claim query plan:")
    print("    " + plan.replace("\n", "\n    "))


if __name__ == "__main__":
    main()
