"""Benchmark --concurrency: waiting tasks run side by side on a run's threads.

    python benchmarks/concurrency.py --db postgresql [--tasks 200] [--seconds 0.1]

For each thread count, enqueues --tasks tasks that each sleep --seconds (as a task waiting on
the network would) and times one run_due_tasks batch, then prints the speed-up over one thread.
The database is created afresh and dropped at the end.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import argument_parser, fresh_database, python_version


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=0.1)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8])
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as lock_dir:
        fresh_database(options.db, lock_dir)

        from benchmarks.tasks import wait
        from django_cronrunner.bulk import enqueue_many
        from django_cronrunner.run.runner import run_due_tasks

        print(f"{options.db}, {options.tasks} tasks of {options.seconds}s each, {python_version()}")
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
