"""Benchmark --concurrency: waiting tasks run side by side on a run's threads.

    python benchmarks/concurrency.py --db postgresql [--tasks 200] [--seconds 0.1]

For each thread count, enqueues --tasks tasks that each sleep --seconds (as a task waiting on
the network would) and times one run_due_tasks batch, then prints the speed-up over one thread.
The database is created afresh and dropped at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.compare import DATABASES, configure, recreate_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=sorted(DATABASES), default="sqlite")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=0.1)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8])
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as lock_dir:
        configure(options.db, lock_dir)
        from django.core.management import call_command
        from django.db import connections

        recreate_database(options.db)
        connections.close_all()
        call_command("migrate", verbosity=0)

        from benchmarks.tasks import wait
        from django_cronrunner.bulk import enqueue_many
        from django_cronrunner.runner import run_due_tasks

        print(
            f"{options.db}, {options.tasks} tasks of {options.seconds}s each, "
            f"Python {sys.version.split()[0]}"
        )
        first = None
        for threads in options.threads:
            enqueue_many(wait, [(options.seconds,)] * options.tasks)
            started = time.perf_counter()
            summary = run_due_tasks(max_seconds=3600, concurrency=threads)
            elapsed = time.perf_counter() - started
            assert summary.succeeded == options.tasks, summary
            first = first or elapsed
            print(f"--concurrency {threads}: {elapsed:.2f}s, {first / elapsed:.1f}x one thread")


if __name__ == "__main__":
    main()
