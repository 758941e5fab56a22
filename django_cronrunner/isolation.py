"""Run an attempt in a child process, so that a task past its timeout can be stopped for sure."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import IO, Any

from cronrunner.store import TaskFailure
from django_cronrunner.attempt import Attempt
from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.errors import TaskProcessDied, TaskTimedOut
from django_cronrunner.models import TaskRecord

TIMED_OUT_PATH = f"{TaskTimedOut.__module__}.{TaskTimedOut.__qualname__}"
DIED_PATH = f"{TaskProcessDied.__module__}.{TaskProcessDied.__qualname__}"
# A fresh child imports Django and the project before it says it is ready; on a loaded machine
# that can take seconds, which must not count against a task's timeout.
START_SECONDS = 60.0
READY = b"ready"


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

    def attempt(self, record: TaskRecord, timeout: float) -> Attempt:
        """Run the task of `record` in the child; stop it if it runs past `timeout` seconds."""
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
        try:
            process.stdin.write(json.dumps({"id": str(record.pk)}).encode() + b"\n")
            process.stdin.flush()
            line = self._read_line(deadline=time.monotonic() + timeout)
        except BrokenPipeError:
            line = b""
        except BaseException:
            self.close()  # never leave a child running a task this run no longer watches
            raise
        if line is None:
            self.close()
            return Attempt(
                failure=TaskFailure(
                    TIMED_OUT_PATH,
                    f"TaskTimedOut: the task ran longer than its timeout of {timeout:g}s and "
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
                    "django_cronrunner.child",
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


def _attempt_from(data: dict[str, Any]) -> Attempt:
    failure = data.get("failure")
    return Attempt(
        return_value=data.get("return_value"),
        failure=None if failure is None else TaskFailure(**failure),
        retryable=bool(data.get("retryable")),
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
            }
        )
        + "\n"
    )
    out.flush()
