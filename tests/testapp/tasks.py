"""Tasks the test suite enqueues."""

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django_cronrunner.compat import TaskContext, task
from django_cronrunner.task import task as task_with_options

NOT_A_TASK = 42


@task
def add(a: int, b: int) -> int:
    return a + b


@task(queue_name="emails")
def send_email(to: str) -> str:
    return f"sent to {to}"


@task
def fail(message: str) -> None:
    raise ValueError(message)


@task
def return_object() -> Any:
    return object()


@task
def exit_process() -> None:
    raise SystemExit(3)


@task(takes_context=True)
def attempt_number(context: TaskContext) -> int:
    return context.attempt


@task
def append_line(path: str, line: str, sleep: float = 0.0) -> str:
    """Append `line` to `path`, so tests can count executions across processes."""
    if sleep:
        time.sleep(sleep)
    with Path(path).open("a") as handle:
        handle.write(line + "\n")
    return line


@task
def sleep_then_append(path: str, line: str, seconds: float) -> None:
    with Path(path).open("a") as handle:
        handle.write(f"start {line} {os.getpid()}\n")
    time.sleep(seconds)
    with Path(path).open("a") as handle:
        handle.write(f"end {line}\n")


@task
async def async_add(a: int, b: int) -> int:
    return a + b


@task
def slow_first_time(path: str, seconds: float) -> int:
    """Sleep on the first attempt only; return how many attempts have started so far."""
    log = Path(path)
    attempts = len(log.read_text().splitlines()) + 1 if log.exists() else 1
    with log.open("a") as handle:
        handle.write(f"start {attempts} {os.getpid()}\n")
    if attempts == 1:
        time.sleep(seconds)
    return attempts


@task
def interrupt() -> None:
    raise KeyboardInterrupt


@task(queue_name="reports")
def report(name: str) -> str:
    return f"report {name}"


@task
def special_value(kind: str) -> Any:
    """Return a value plain JSON cannot hold, picked by name (arguments must be JSON)."""
    return {"nan": float("nan"), "inf": float("-inf"), "nul": "a\x00b"}[kind]


@task_with_options(takes_context=True, max_attempts=3, retry_backoff="fixed", retry_delay=60)
def flaky(context: TaskContext, succeed_on: int) -> int:
    """Fail until attempt `succeed_on`; return the attempt that succeeded."""
    if context.attempt < succeed_on:
        raise ConnectionError(f"attempt {context.attempt} failed")
    return context.attempt


@task_with_options(max_attempts=5, no_retry_on=(ValueError,))
def picky(error: str) -> None:
    """Raise ValueError (never retried) or anything else (retried)."""
    raise ValueError(error) if error == "value" else RuntimeError(error)


@task_with_options(timeout=1)
def spin(path: str) -> None:
    """Busy-loop forever, after saying which process runs it."""
    Path(path).write_text(str(os.getpid()))
    while True:
        pass


@task_with_options(timeout=1, max_attempts=2, retry_backoff="fixed", retry_delay=0)
def nap(path: str, seconds: float) -> None:
    """Sleep in C (time.sleep) for longer than the timeout allows."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


@task_with_options(timeout=1)
def wait_on_socket(port: int) -> bytes:
    """Block reading a socket whose peer never sends."""
    import socket

    with socket.create_connection(("127.0.0.1", port)) as connection:
        return connection.recv(1)


@task_with_options(timeout=1)
def quick_in_child() -> int:
    """Return at once, well within a short timeout; say which process ran the task."""
    return os.getpid()


@task_with_options(timeout=30)
def double_in_child(number: int) -> dict[str, int]:
    """Return the doubled number and the id of the process that ran the task."""
    return {"double": number * 2, "pid": os.getpid()}


@task_with_options(timeout=30)
def exit_child() -> None:
    os._exit(3)


@task
def drop_own_connection() -> str:
    """Have the server end this process's database connection, then return normally."""
    from django.db import connection

    from tests.testapp.db_faults import backend_id, end_connections

    end_connections(only=backend_id(connection))
    return "dropped"


@task_with_options(max_attempts=4)
def exit_hard() -> None:
    """End the whole process that runs the task, every time, as a segfault would."""
    os._exit(7)


@task
def wait_for_file(path: str, limit: float) -> bool:
    """Wait until `path` exists (or `limit` seconds pass); say whether it appeared."""
    deadline = time.monotonic() + limit
    while not Path(path).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


_BARRIERS: dict[int, threading.Barrier] = {}


@task
def rendezvous(parties: int) -> str:
    """Wait until `parties` of these run at once in this process; fail if they never do."""
    barrier = _BARRIERS.setdefault(parties, threading.Barrier(parties))
    barrier.wait(timeout=20)
    return threading.current_thread().name


@task_with_options(takes_context=True, max_attempts=3, retry_backoff="fixed", retry_delay=0)
def flaky_now(context: TaskContext, succeed_on: int) -> int:
    """Fail until attempt `succeed_on`, each retry due at once; return the attempt that won."""
    if context.attempt < succeed_on:
        raise ConnectionError(f"attempt {context.attempt} failed")
    return context.attempt


@task_with_options(max_attempts=2, retry_backoff="fixed", retry_delay=0)
def interrupt_then_succeed(path: str) -> str:
    """Raise KeyboardInterrupt on the first attempt, succeed on the second."""
    log = Path(path)
    first = not log.exists()
    log.write_text("attempted\n")
    if first:
        raise KeyboardInterrupt
    return "done"


@task_with_options(max_attempts=2, retry_backoff="fixed", retry_delay=0, timeout=30)
def exit_in_child_then_succeed(path: str) -> str:
    """Raise SystemExit on the first attempt (in the child), succeed on the second."""
    log = Path(path)
    first = not log.exists()
    log.write_text("attempted\n")
    if first:
        raise SystemExit(4)
    return "done"


@task_with_options(timeout=30)
def interrupt_in_child() -> None:
    raise KeyboardInterrupt


@task_with_options(timeout=30)
def fail_in_child(message: str) -> None:
    raise ValueError(message)


@task
def shout(message: str, to_stderr: bool = False) -> str:
    """Print a line, as a task's own code might, then return."""
    print(f"printed: {message}", file=sys.stderr if to_stderr else sys.stdout)
    return message


@task
def warn(message: str) -> str:
    """Log a warning, as a task's own code might, then return."""
    import logging

    logging.getLogger("tests.testapp").warning("warned: %s", message)
    return message


@task_with_options(unique=True)
def reindex_page(page_id: int) -> int:
    return page_id


@task_with_options(unique=True, unique_until="finished")
def sync_everything(path: str = "", seconds: float = 0.0) -> None:
    time.sleep(seconds)


@task_with_options(unique_key=lambda tenant, *args, **kwargs: f"tenant-{tenant}")
def import_tenant(tenant: int, batch: int = 0) -> int:
    return batch


@task_with_options(concurrency_limit=1, concurrency_key=lambda tenant, *args, **kwargs: str(tenant))
def one_per_tenant(tenant: int, path: str, seconds: float = 0.0, hold: str = "") -> None:
    """Record start and end in `path`, so a test can see which runs overlapped; keep running
    while the file `hold` exists (at most a minute), unless `{hold}.release-{pid}` names this
    process, so a test can end one run's copy of the task and not another's."""
    with open(path, "a") as out:
        out.write(f"start {tenant} {time.time()!r}\n")
    time.sleep(seconds)
    deadline = time.monotonic() + 60
    release = f"{hold}.release-{os.getpid()}"
    while (
        hold
        and os.path.exists(hold)
        and not os.path.exists(release)
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    with open(path, "a") as out:
        out.write(f"end {tenant} {time.time()!r}\n")


@task_with_options(concurrency_limit=2, concurrency_key="shared-api")
def two_at_once(path: str, seconds: float = 0.0) -> None:
    with open(path, "a") as out:
        out.write(f"start x {time.time()!r}\n")
    time.sleep(seconds)
    with open(path, "a") as out:
        out.write(f"end x {time.time()!r}\n")


@task(takes_context=True)
def wait_for_cancel(context: TaskContext, path: str, limit: float) -> str:
    """Poll for a requested cancellation, up to `limit` seconds; raise when it comes."""
    Path(path).write_text("started")
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        context.raise_if_cancelled()  # type: ignore[attr-defined]
        time.sleep(0.05)
    return "not cancelled"


@task_with_options(timeout=60)
def sleep_in_child(path: str, seconds: float) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)


@task_with_options(
    max_attempts=3, backoff=lambda error, result: None if "stop" in str(error) else 0
)
def backs_off(message: str) -> None:
    raise ValueError(message)
