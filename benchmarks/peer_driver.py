"""Run one step of benchmarks/peers.py inside a peer's own venv and print its figures as JSON.

    PEER_CONFIG='{...}' python -m benchmarks.peer_driver enqueue 5000
    PEER_CONFIG='{...}' python -m benchmarks.peer_driver drain 5000
    PEER_CONFIG='{...}' python -m benchmarks.peer_driver empty
    PEER_CONFIG='{...}' python -m benchmarks.peer_driver floor 3

`enqueue` times one enqueue call per task (as views make them); `drain` times a fresh worker
process from its start until every task has finished (the whole process for a peer with a batch
mode, which exits by itself, and then its CPU time too; otherwise the driver stops the worker
once the last task is done); `empty` times a fresh batch process that finds nothing to do;
`floor N` a fresh process that only sets Django up, connects and sends N `SELECT 1`.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.peer_project.settings")
CONFIG: dict[str, Any] = json.loads(os.environ["PEER_CONFIG"])
#: How often a worker without a batch mode is checked for the last finished task.
POLL_SECONDS = 0.02


def enqueue(count: int) -> dict[str, float]:
    import django

    django.setup()
    from benchmarks.peer_project import tasks

    if CONFIG["kind"] == "django-q2":
        from django_q.tasks import async_task

        def one(number: int) -> object:
            return async_task("benchmarks.peer_project.tasks.noop", number)

    elif CONFIG["kind"] == "procrastinate":

        def one(number: int) -> object:
            return tasks.noop.defer(number=number)

    else:

        def one(number: int) -> object:
            return tasks.noop.enqueue(number)

    started = time.perf_counter()
    for number in range(count):
        one(number)
    return {"seconds": time.perf_counter() - started}


def finished() -> int:
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(CONFIG["finished_sql"])
        (count,) = cursor.fetchone()
    connection.close()
    return int(count)


def worker() -> list[str]:
    return [sys.executable, "-m", "django", *CONFIG["worker"]]


def drain(count: int) -> dict[str, float]:
    cpu = None
    if CONFIG["batch"]:
        before = children_cpu()
        started = time.perf_counter()
        subprocess.run(worker(), check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        # What the code costs, apart from the disk's commit latency, which varies from minute
        # to minute far more than the code does.
        cpu = children_cpu() - before
    else:
        finished()  # this process's own Django start-up, before the clock starts
        started = time.perf_counter()
        process = subprocess.Popen(worker(), start_new_session=True, stdout=subprocess.DEVNULL)
        try:
            while finished() < count:
                if process.poll() is not None:
                    raise SystemExit(f"{CONFIG['worker']} exited with {process.returncode}")
                time.sleep(POLL_SECONDS)
            seconds = time.perf_counter() - started
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    done = finished()
    if done < count:
        raise SystemExit(f"{CONFIG['worker']} finished {done} of {count} tasks")
    return {"seconds": seconds} if cpu is None else {"seconds": seconds, "cpu": cpu}


def children_cpu() -> float:
    """Return the CPU seconds (user and system) of the waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def empty() -> dict[str, float]:
    started = time.perf_counter()
    subprocess.run(worker(), check=True, stdout=subprocess.DEVNULL)
    return {"seconds": time.perf_counter() - started}


def floor(statements: int) -> dict[str, float]:
    """Time a fresh process that sets Django up, connects and sends `statements` SELECT 1: what
    any run that reads the queue must pay."""
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        f"    for _ in range({statements}): cursor.execute('SELECT 1')\n"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return {"seconds": time.perf_counter() - started}


def main() -> None:
    action, *arguments = sys.argv[1:]
    if action == "enqueue":
        figures = enqueue(int(arguments[0]))
    elif action == "drain":
        figures = drain(int(arguments[0]))
    elif action == "empty":
        figures = empty()
    elif action == "floor":
        figures = floor(int(arguments[0]))
    else:
        raise SystemExit(f"unknown action {action!r}: enqueue, drain or empty")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
