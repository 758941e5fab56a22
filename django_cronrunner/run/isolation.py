"""Run an attempt in a child process, so that a task past its timeout can be stopped for sure."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from django.db import connections

from cronrunner.store import TaskFailure
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.errors import TaskFailedInChild, TaskProcessDied, TaskTimeout
from django_cronrunner.models import CANCELLED_PATH, TaskRecord
from django_cronrunner.run.attempt import Attempt

TIMED_OUT_PATH = f"{TaskTimeout.__module__}.{TaskTimeout.__qualname__}"
DIED_PATH = f"{TaskProcessDied.__module__}.{TaskProcessDied.__qualname__}"
# A fresh child imports Django and the project before it says it is ready; on a loaded machine
# that can take seconds, which must not count against a task's timeout.
START_SECONDS = 60.0
READY = b"ready"
#: How often the parent asks whether a stop was requested while its child runs a task.
STOP_CHECK_SECONDS = 0.5
#: How often the wait for the child looks at what the last question found (no database here).
STOP_WAKE_SECONDS = 0.1


class Isolation:
    """A child process, started on first use, that runs one attempt at a time for this run.

    The child is a fresh interpreter (no inherited database connections), in a session of its
    own (killing it kills what the task started), and dies with this process.
    """

    def __init__(self, backend: CronRunnerBackend) -> None:
        self.backend = backend
        self._process: subprocess.Popen[bytes] | None = None
        self._results: int | None = None
        self._buffer = b""

    def attempt(
        self,
        record: TaskRecord,
        timeout: float,
        stop_requested: Callable[[], bool] | None = None,
    ) -> Attempt:
        """Run the task of `record` in the child; stop it if it runs past `timeout` seconds,
        or once `stop_requested` (asked every STOP_CHECK_SECONDS by a StopWatch) says so."""
        process = self._start()
        if process is None:
            code = self.close()
            return Attempt(
                failure=TaskFailure(
                    DIED_PATH,
                    "TaskProcessDied: the task's process exited, or was not ready within "
                    f"{START_SECONDS:g}s of starting (exit status {code}).\n",
                ),
                retryable=True,
            )
        assert process.stdin is not None
        watch = None if stop_requested is None else StopWatch(stop_requested)
        try:
            process.stdin.write(json.dumps({"id": str(record.pk)}).encode() + b"\n")
            process.stdin.flush()
            deadline = time.monotonic() + timeout
            while True:
                step = deadline if watch is None else time.monotonic() + STOP_WAKE_SECONDS
                line = self._read_line(deadline=min(deadline, step))
                if line is not None or time.monotonic() >= deadline:
                    break
                if watch is not None and watch.requested.is_set():
                    self.close()
                    return Attempt(
                        failure=TaskFailure(
                            CANCELLED_PATH,
                            "TaskCancelled: a stop was requested while the task ran; its "
                            "process was killed.\n",
                        ),
                        retryable=False,
                    )
        except BrokenPipeError:
            line = b""
        except BaseException:
            self.close()  # never leave a child running a task this run no longer watches
            raise
        finally:
            if watch is not None:
                watch.stop()
        if line is None:
            self.close()
            return Attempt(
                failure=TaskFailure(
                    TIMED_OUT_PATH,
                    f"TaskTimeout: the task ran longer than its timeout of {timeout:g}s and "
                    "was stopped.\n",
                ),
                retryable=True,
            )
        if not line:
            code = self.close()
            return Attempt(
                failure=TaskFailure(
                    DIED_PATH,
                    f"TaskProcessDied: the task's process exited (status {code}) before "
                    "reporting how the task ended.\n",
                ),
                retryable=True,
            )
        return _attempt_from(json.loads(line))

    def close(self) -> int | None:
        """Stop the child and everything it started; return its exit status."""
        process, self._process = self._process, None
        if self._results is not None:
            os.close(self._results)
            self._results = None
        self._buffer = b""
        if process is None:
            return None
        # The whole session: whatever the task started goes too, even if the child is gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.stdin is not None:
            process.stdin.close()
        return process.wait()

    def _start(self) -> subprocess.Popen[bytes] | None:
        """Return a child ready for a task, or None if a new one exited or hung on start-up."""
        if self._process is not None and self._process.poll() is None:
            return self._process
        self.close()
        read_end, write_end = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "django_cronrunner.run.child",
                    self.backend.alias,
                    str(write_end),
                    str(os.getpid()),
                ],
                stdin=subprocess.PIPE,
                pass_fds=(write_end,),
                start_new_session=True,
                env=env,
            )
        finally:
            os.close(write_end)
        self._results = read_end
        try:
            ready = self._read_line(deadline=time.monotonic() + START_SECONDS)
        except BaseException:
            self.close()
            raise
        return self._process if ready == READY else None

    def _read_line(self, deadline: float) -> bytes | None:
        """Return the child's next line, b"" if it exited, or None when the deadline passed."""
        assert self._results is not None
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._results], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self._results, 65536)
            if not chunk:
                return b""
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line


class StopWatch:
    """Ask `stop_requested` every STOP_CHECK_SECONDS on a thread of its own, until stopped.

    The wait for the child only reads `requested`: a database slow to answer (a cut link, a
    pooler's queue) never delays killing a task that ran past its timeout. The thread opens
    its own connection at its first question (an attempt shorter than STOP_CHECK_SECONDS opens
    none) and closes it when it ends.
    """

    def __init__(self, stop_requested: Callable[[], bool]) -> None:
        self.requested = threading.Event()
        self._stopped = threading.Event()
        threading.Thread(
            target=self._watch, args=(stop_requested,), name="cronrunner-stop-watch", daemon=True
        ).start()

    def _watch(self, stop_requested: Callable[[], bool]) -> None:
        try:
            while not self._stopped.wait(STOP_CHECK_SECONDS):
                if stop_requested():
                    self.requested.set()
                    return
        finally:
            connections.close_all()  # this thread's connections only

    def stop(self) -> None:
        """Ask no more; a question still waiting on the database ends on its own, unwaited."""
        self._stopped.set()


def failure_as_exception(failure: TaskFailure) -> BaseException:
    """Rebuild, for receivers of task_finished, the exception of an attempt that failed in the
    child: its class when it is ours, else TaskFailedInChild carrying the child's traceback."""
    if failure.exception_class_path == TIMED_OUT_PATH:
        return TaskTimeout(failure.traceback.strip())
    if failure.exception_class_path == DIED_PATH:
        return TaskProcessDied(failure.traceback.strip())
    return TaskFailedInChild(
        f"{failure.exception_class_path} in the task's process:\n{failure.traceback.rstrip()}"
    )


def _attempt_from(data: dict[str, Any]) -> Attempt:
    failure = data.get("failure")
    retry_after = data.get("retry_after")
    return Attempt(
        return_value=data.get("return_value"),
        failure=None if failure is None else TaskFailure(**failure),
        retryable=bool(data.get("retryable")),
        retry_after=None if retry_after is None else float(retry_after),
    )


def attempt_to_json(attempt: Attempt, out: IO[str]) -> None:
    """Write one attempt as the line the parent reads."""
    failure = (
        None
        if attempt.failure is None
        else {
            "exception_class_path": attempt.failure.exception_class_path,
            "traceback": attempt.failure.traceback,
        }
    )
    out.write(
        json.dumps(
            {
                "return_value": attempt.return_value,
                "failure": failure,
                "retryable": attempt.retryable,
                "retry_after": attempt.retry_after,
            }
        )
        + "\n"
    )
    out.flush()
