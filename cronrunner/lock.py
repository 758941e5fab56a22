"""An OS file lock that dies with the process, telling who holds it."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

import filelock

from cronrunner.errors import LockFileError, LockHeld


@dataclass(frozen=True, slots=True)
class LockHolder:
    """What the holding run wrote into the lock file."""

    pid: int | None
    host: str | None
    started_at: str | None

    def describe(self) -> str:
        """Say who holds the lock, with whatever is known."""
        parts = []
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.host:
            parts.append(f"on {self.host}")
        if self.started_at:
            parts.append(f"since {self.started_at}")
        return " ".join(parts) or "an unknown process"


class RunLock:
    """Hold an exclusive, non-blocking flock on `path` for the duration of one run."""

    def __init__(self, path: str | os.PathLike[str], started_at: datetime) -> None:
        self.path = Path(path).absolute()
        self._started_at = started_at
        # fallback_to_soft=False: a soft lock survives a kill -9 and would block every later run.
        self._lock = filelock.FileLock(
            self.path,
            blocking=False,
            thread_local=False,
            fallback_to_soft=False,
            on_acquired=self._write_holder,
        )

    @property
    def key(self) -> str:
        """Name this lock across hosts in 64 characters: runs with the same key never overlap."""
        return hashlib.sha256(f"{socket.gethostname()}:{self.path}".encode()).hexdigest()

    def acquire(self) -> None:
        """Take the lock at once, or raise LockHeld or LockFileError."""
        self._check_directory()
        try:
            self._lock.acquire()
        except filelock.Timeout as e:
            raise LockHeld(f"Another run holds {self.path}: {self.holder().describe()}.") from e
        except OSError as e:
            reason = e.strerror or str(e)
            raise LockFileError(f"Cannot create the lock file {self.path}: {reason}.") from e

    def release(self) -> None:
        """Give the lock up; the file stays so that later runs lock the same inode."""
        self._lock.release()

    def holder(self) -> LockHolder:
        """Read what the current holder wrote, tolerating a missing or garbled file."""
        try:
            data = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict):
            data = {}
        pid = data.get("pid")
        return LockHolder(
            pid=pid if isinstance(pid, int) else None,
            host=str(data["host"]) if "host" in data else None,
            started_at=str(data["started_at"]) if "started_at" in data else None,
        )

    def _check_directory(self) -> None:
        # filelock creates missing parents and reports an unwritable file as "held":
        # say plainly what is wrong instead.
        directory = self.path.parent
        if not directory.is_dir():
            raise LockFileError(f"The lock file's directory {directory} does not exist.")
        if self.path.exists():
            if not os.access(self.path, os.R_OK | os.W_OK):
                raise LockFileError(f"The lock file {self.path} is not readable and writable.")
        elif not os.access(directory, os.W_OK | os.X_OK):
            raise LockFileError(f"The lock file's directory {directory} is not writable.")

    def _write_holder(self, fd: int) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": self._started_at.isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
