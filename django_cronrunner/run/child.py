"""The child process of a run: runs the attempts its parent sends, one line per task id."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this process when its parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def main(argv: list[str]) -> None:
    alias, results_fd, parent_pid = argv[1], int(argv[2]), int(argv[3])
    die_with_parent(parent_pid)
    # The parent handles SIGINT/SIGTERM (graceful stop); the child is stopped by its parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import django

    django.setup()
    from django_cronrunner.run.console import quiet_child_console

    quiet_child_console()
    from django_cronrunner.backend import get_backend
    from django_cronrunner.models import TaskRecord
    from django_cronrunner.run.attempt import Attempt, attempt_task, failure_from
    from django_cronrunner.run.isolation import READY, attempt_to_json
    from django_cronrunner.storage.results import resolve_task, stored_arguments

    backend = get_backend(alias)
    with os.fdopen(results_fd, "w") as results:
        # The parent starts a task's timeout only once the child can run it.
        results.write(READY.decode() + "\n")
        results.flush()
        for line in sys.stdin:
            try:
                record = TaskRecord.objects.using(backend.config.database).get(
                    pk=json.loads(line)["id"]
                )
                task_object = resolve_task(record.task_path)
                args, kwargs = stored_arguments(record)
            except Exception as e:
                attempt_to_json(Attempt(failure=failure_from(e), retryable=True), results)
                continue
            attempt_to_json(attempt_task(backend, record, task_object, args, kwargs), results)


if __name__ == "__main__":
    main(sys.argv)
