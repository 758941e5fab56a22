"""Measure what the visitor-driven mode adds to a page's latency under concurrent load.

    python benchmarks/visitor_latency.py [--seconds 10] [--rounds 3] [--connections 16]

Serves a small page with gunicorn on 127.0.0.1 (SQLite, the test suite's trigger settings) and
loads it with `wrk --latency` three times: without the middleware; with it, every second, on an
empty queue; and with it, every second, on a queue that always has work (tasks of 20 ms, a 2 s
trigger budget), where the trigger's own request keeps a worker busy. The three alternate for
--rounds rounds, so that a machine's changing load falls on each alike. Prints the median p50,
p90 and p99 of each, the p99 added against the first, each round's p99, and how many batches the
visits started. The databases are temporary files, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECRET = "bEnCh-Kq8vZ0pYwX4mN7bL2cD5fG9hJ3sA6eU1tR"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentiles(wrk_output: str) -> dict[int, float]:
    """Read wrk's latency distribution, in milliseconds."""
    found = re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", wrk_output, re.M)
    return {int(p): float(value) * UNITS[unit] for p, value, unit in found}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("visitor_latency.py needs wrk (apt-get install wrk).")
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DJANGO_SETTINGS_MODULE": "tests.trigger_settings",
            "CRONRUNNER_TEST_DB": "sqlite",
            "CRONRUNNER_TEST_LOCK_FILE": str(work / "run.lock"),
            "CRONRUNNER_TEST_TRIGGER_SECRET": SECRET,
            "CRONRUNNER_TEST_TRIGGER_BUDGET": "2",
        }
        # One database stays empty; the other always has work.
        databases = {"empty": work / "empty.sqlite3", "busy": work / "busy.sqlite3"}
        for name, database in databases.items():
            db_env = {**env, "CRONRUNNER_SQLITE_NAME": str(database)}
            migrate = [sys.executable, "-m", "django", "migrate", "-v", "0"]
            subprocess.run(migrate, env=db_env, check=True)
            if name == "busy":
                enqueue(db_env, 100_000)
        modes = {
            "off": ("empty", False),
            "on, empty queue": ("empty", True),
            "on, busy queue": ("busy", True),
        }
        print(
            f"wrk -t2 -c{options.connections} -d{options.seconds}s --latency on /page/, "
            f"gunicorn --workers {options.workers} (sync), {sys.version.split()[0]}, SQLite; "
            f"median of {options.rounds} interleaved rounds"
        )
        results: dict[str, list[dict[int, float]]] = {mode: [] for mode in modes}
        batches = dict.fromkeys(modes, 0)
        for _ in range(options.rounds):
            for mode, (name, visitor) in modes.items():
                db_env = {**env, "CRONRUNNER_SQLITE_NAME": str(databases[name])}
                before = batch_count(databases[name])
                extra = {"CRONRUNNER_TEST_VISITOR_INTERVAL": "1"} if visitor else {}
                results[mode].append(measure(db_env, extra, options))
                batches[mode] += batch_count(databases[name]) - before
        baseline = statistics.median(row[99] for row in results["off"])
        for mode, rows in results.items():
            p50, p90, p99 = (statistics.median(row[p] for row in rows) for p in (50, 90, 99))
            every = ", ".join(f"{row[99]:.1f}" for row in rows)
            print(
                f"  visitor mode {mode:<16} p50 {p50:6.2f} ms  p90 {p90:6.2f} ms  "
                f"p99 {p99:6.2f} ms ({p99 - baseline:+.2f} ms; rounds: {every})  "
                f"batches started: {batches[mode]}"
            )


def measure(
    env: dict[str, str], visitor: dict[str, str], options: argparse.Namespace
) -> dict[int, float]:
    port = free_port()
    server_env = {**env, **visitor}
    if visitor:
        server_env["CRONRUNNER_TEST_VISITOR_URL"] = f"http://127.0.0.1:{port}/cron/trigger/"
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--preload"),
            # gunicorn's default timeout, which CRONRUNNER_TRIGGER_REQUEST_TIMEOUT assumes.
            *("--workers", str(options.workers), "--timeout", "30"),
            "django.core.wsgi:get_wsgi_application()",
        ],
        cwd=REPO,
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("gunicorn did not start")
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/page/"
        # Warm every worker up before measuring.
        subprocess.run(["wrk", "-t1", "-c4", "-d2s", url], capture_output=True, check=True)
        (Path(env["CRONRUNNER_TEST_LOCK_FILE"]).with_suffix(".visited")).unlink(missing_ok=True)
        result = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{options.connections}",
                f"-d{options.seconds}s",
                "--latency",
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return percentiles(result.stdout)
    finally:
        server.terminate()
        server.wait(timeout=60)


def enqueue(env: dict[str, str], count: int) -> None:
    """Fill the queue with tasks of 20 ms, more than any run of the benchmark can drain."""
    script = (
        "import django; django.setup()\n"
        "from django_cronrunner.bulk import enqueue_many\n"
        "from tests.testapp.tasks import append_line\n"
        "call = {'path': '/dev/null', 'line': 'x', 'sleep': 0.02}\n"
        f"enqueue_many(append_line, kwargs=[call] * {count})\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True)


def batch_count(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        (count,) = connection.execute("SELECT count(*) FROM cronrunner_batch").fetchone()
    return int(count)


if __name__ == "__main__":
    main()
