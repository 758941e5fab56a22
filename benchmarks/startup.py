"""Benchmark the every-minute case: a run that finds nothing, against a bare django.setup().

    python benchmarks/startup.py --db sqlite [--rounds 20]

Each round starts three fresh interpreters on the same settings, one after the other: one that
only calls django.setup(); one that also connects and sends three `SELECT 1`, the least any
run that looks at the queue pays; and one that runs `run_due_tasks` through Django's command
line (as `manage.py run_due_tasks` does) on an empty queue. It prints the median wall time of
each and their ratios. The database is created afresh and dropped at the end.
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    REPO,
    argument_parser,
    child_prelude,
    fresh_database,
    python_version,
)

PACKAGES = ("cronrunner", "django_cronrunner", "benchmarks")
RUN = "from django.core.management import execute_from_command_line\n" + (
    "execute_from_command_line(['manage.py', 'run_due_tasks', '-v', '0'])\n"
)
# Three statements, as many as an empty run sends (recover, claim, batch log).
CONNECT = (
    "from django.db import connection\n"
    "with connection.cursor() as cursor:\n"
    "    for _ in range(3):\n"
    "        cursor.execute('SELECT 1')\n"
)


def wall_time(script: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--contrib",
        action="store_true",
        help="add the contrib apps a new project starts with (admin, auth, sessions, ...)",
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as lock_dir:
        fresh_database(options.db, lock_dir, contrib=options.contrib)
        setup = child_prelude(options.db, lock_dir, contrib=options.contrib)
        # Installed from a wheel, the project is byte-compiled; from a checkout it is compiled
        # on first import, unless PYTHONDONTWRITEBYTECODE is set: then it is every time.
        for package in PACKAGES:
            compileall.compile_dir(REPO / package, quiet=1)
        wall_time(setup + RUN)  # warm the OS file cache for both
        bare, connected, empty = [], [], []
        for _ in range(options.rounds):
            bare.append(wall_time(setup))
            connected.append(wall_time(setup + CONNECT))
            empty.append(wall_time(setup + RUN))
        from django_cronrunner.models import BatchRun

        # Every timed run did run: each left its batch log row.
        assert BatchRun.objects.count() == options.rounds + 1, BatchRun.objects.count()
    bare_median = statistics.median(bare)
    apps = "with Django's contrib apps" if options.contrib else "three apps"
    print(f"{options.db}, {apps}, {options.rounds} rounds, {python_version()} (medians)")
    for label, times in (
        ("bare django.setup()", bare),
        ("+ connect and 3 x SELECT 1", connected),
        ("run_due_tasks, empty queue", empty),
    ):
        median = statistics.median(times)
        print(f"{label:28} {median * 1000:4.0f} ms  {median / bare_median:.2f}x")


if __name__ == "__main__":
    main()
