"""Benchmark the every-minute case: a run that finds nothing, against a bare django.setup().

    python benchmarks/startup.py --db sqlite [--rounds 20]

Each round starts two fresh interpreters on the same settings, one after the other: one that
only calls django.setup(), and one that runs `run_due_tasks` through Django's command line (as
`manage.py run_due_tasks` does) on an empty queue. It prints the median wall time of each and
their ratio. The database is created afresh and dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.compare import DATABASES, configure, recreate_database  # noqa: E402

SETUP = (
    "import json, sys\n"
    "sys.path.insert(0, {repo!r})\n"
    "from benchmarks import compare\n"
    "compare.DATABASES[{vendor!r}] = json.loads({database!r})\n"
    "compare.configure({vendor!r}, {lock_dir!r})\n"
)
RUN = "from django.core.management import execute_from_command_line\n" + (
    "execute_from_command_line(['manage.py', 'run_due_tasks', '-v', '0'])\n"
)


def wall_time(script: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=sorted(DATABASES), default="sqlite")
    parser.add_argument("--rounds", type=int, default=20)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as lock_dir:
        configure(options.db, lock_dir)
        from django.core.management import call_command
        from django.db import connections

        recreate_database(options.db)
        connections.close_all()
        call_command("migrate", verbosity=0)
        settings = dict(connections["default"].settings_dict)
        database = json.dumps(
            {key: settings[key] for key in ("ENGINE", "NAME", "USER", "HOST", "PORT", "OPTIONS")}
        )
        setup = SETUP.format(
            repo=str(REPO), vendor=options.db, database=database, lock_dir=lock_dir
        )
        wall_time(setup + RUN)  # warm the OS file cache for both
        bare, empty = [], []
        for _ in range(options.rounds):
            bare.append(wall_time(setup))
            empty.append(wall_time(setup + RUN))
        from django_cronrunner.models import BatchRun

        # Every timed run did run: each left its batch log row.
        assert BatchRun.objects.count() == options.rounds + 1, BatchRun.objects.count()
    bare_median, empty_median = statistics.median(bare), statistics.median(empty)
    print(f"{options.db}, {options.rounds} rounds, Python {sys.version.split()[0]}")
    print(f"bare django.setup():        {bare_median * 1000:.0f} ms (median)")
    print(f"run_due_tasks, empty queue: {empty_median * 1000:.0f} ms (median)")
    print(f"ratio: {empty_median / bare_median:.2f}x")


if __name__ == "__main__":
    main()
