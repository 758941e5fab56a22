"""Wire the Django backend into cronrunner's batch: the one entry point commands call."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path

from django.db import Error as DatabaseError
from django.db import connections

from cronrunner.clock import Clock, SystemClock
from cronrunner.drain import StopFlag, TaskReport
from cronrunner.errors import StorageUnavailable
from cronrunner.lock import RunLock
from cronrunner.runner import RunSettings, run_batch
from cronrunner.shutdown import SHUTDOWN_SIGNALS, GracefulShutdown
from cronrunner.store import BatchSummary
from django_cronrunner.backend import get_backend
from django_cronrunner.operations.hooks import failure_before_batch, monitoring_hooks
from django_cronrunner.run.execution import TaskExecutor
from django_cronrunner.storage.database_clock import DatabaseClock
from django_cronrunner.storage.pruning import prune_when_due
from django_cronrunner.storage.store import DatabaseTaskStore


def new_worker_id() -> str:
    """Name this run uniquely and readably: host, pid and a random suffix."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def run_due_tasks(
    *,
    backend_alias: str = "default",
    max_seconds: float = 50.0,
    max_tasks: int | None = None,
    queues: frozenset[str] | None = None,
    concurrency: int = 1,
    poll_seconds: float | None = None,
    lock_file: Path | None = None,
    clock: Clock | None = None,
    stop: StopFlag | None = None,
    report: Callable[[TaskReport], None] | None = None,
    handle_signals: bool = True,
    first_task_always_starts: bool = True,
) -> BatchSummary:
    """Run one batch for `backend_alias` on `concurrency` threads; raise StorageUnavailable if
    the database is down. With `handle_signals`, from the main thread, a first SIGTERM or SIGINT
    sets `stop` and a second raises StopNow (see GracefulShutdown); a web server's process keeps
    its own handlers (handle_signals=False). `first_task_always_starts`: see DrainSettings."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1.")
    backend = get_backend(backend_alias)
    config = backend.config
    host_clock = clock or SystemClock()
    # Leases, due times and schedule slots are compared across hosts: on the database's clock,
    # read when the batch starts (inside the error handling below) and carried forward.
    run_clock = clock or DatabaseClock(config.database, host_clock)
    # Only the next run on this host reads the lock's start time.
    lock = RunLock(lock_file or config.lock_path(), started_at=host_clock.now())
    worker_id = new_worker_id()
    store = DatabaseTaskStore(
        using=config.database,
        backend_name=backend.alias,
        worker_id=worker_id,
        lock_key=lock.key,
        lease_seconds=config.lease_seconds,
        queues=queues,
    )
    before_drain: Callable[[], int] | None = None
    if config.schedules:
        # Imported here: croniter takes about 10 ms to import, and most sites declare no
        # schedule; every minute's empty run should not pay for it.
        from django_cronrunner.scheduling.schedules import fire_due_slots

        def before_drain() -> int:
            return fire_due_slots(backend, run_clock.now())

    started = run_clock.monotonic()

    def prune() -> None:
        # The queue is empty: what is left of the budget goes to pruning, in chunks that stop
        # when it is spent.
        prune_when_due(
            using=config.database,
            backend_name=backend.alias,
            retention=config.retention,
            now=run_clock.now(),
            marker=lock.path.with_suffix(".pruned"),
            should_stop=lambda: run_clock.monotonic() - started >= max_seconds,
        )

    # Each thread has its own executor: a task with a timeout runs in that thread's child.
    executors = [TaskExecutor(backend, run_clock) for _ in range(concurrency)]
    stop = stop or StopFlag()
    hooks = monitoring_hooks(backend)
    try:
        with (
            GracefulShutdown(stop, SHUTDOWN_SIGNALS if handle_signals else ()),
            failure_before_batch(hooks),
        ):
            connections[config.database].ensure_connection()
            return run_batch(
                store,
                executors,
                lock,
                run_clock,
                RunSettings(
                    max_seconds=max_seconds,
                    max_tasks=max_tasks,
                    claim_size=config.claim_size,
                    lease_seconds=config.lease_seconds,
                    queues=queues,
                    poll_seconds=poll_seconds,
                    first_task_always_starts=first_task_always_starts,
                ),
                worker_id=worker_id,
                stop=stop,
                report=report,
                before_drain=before_drain,
                idle=prune,
                # Worker and heartbeat threads open their own connections; only they can close them.
                thread_cleanup=connections.close_all,
                hooks=hooks,
            )
    except DatabaseError as e:
        raise StorageUnavailable(
            # Drivers spread their message over lines; the log gets one line per problem.
            f"The database {config.database!r} cannot be used: "
            f"{' '.join(str(e).split()) or type(e).__name__}"
        ) from e
    finally:
        for executor in executors:
            executor.close()
