"""An OS file lock that dies with the process, telling who holds it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

from cronrunner.errors import LockFileError, LockHeld

# The descriptors of the locks this process holds, so that a child made by os.fork() can close
# its copies: a copy would keep the lock after this process dies, blocking every later run.
_HELD: set[int] = set()

# POSIX only, as the project is (cron, flock): Windows would need msvcrt.locking.
# O_NOFOLLOW: a symlink planted at the lock path must not steer the holder's write elsewhere.
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW


def _lock(fd: int) -> None:
    """Take an exclusive flock on `fd` without waiting; raise BlockingIOError if it is held."""
    # flock, not fcntl record locks: those drop when the process closes any descriptor of
    # the file, as holder() does.
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno == errno.EACCES:  # how some network filesystems report a held lock
            raise BlockingIOError(e.errno, e.strerror) from e
        raise


def _unlock(fd: int) -> None:
    """Give up the flock on `fd`."""
    fcntl.flock(fd, fcntl.LOCK_UN)


def _close_inherited() -> None:
    """Close a forked child's copies of the held locks, leaving them held by the parent."""
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_inherited)


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


def check_lock_path(path: Path) -> None:
    """Raise LockFileError if this user could not create, or open, the lock file `path`."""
    # os.open would say only "No such file or directory" or "Permission denied": say plainly
    # which of the directory and the file is wrong instead.
    directory = path.parent
    if not directory.is_dir():
        raise LockFileError(
            f"The lock file's directory {directory} does not exist.", "Create the directory"
        )
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise LockFileError(
                f"The lock file {path} is not readable and writable by this user.",
                "Let this user read and write the file",
            )
    elif not os.access(directory, os.W_OK | os.X_OK):
        raise LockFileError(
            f"The lock file's directory {directory} is not writable by this user.",
            "Let this user write in the directory",
        )


class RunLock:
    """Hold an exclusive, non-blocking flock on `path` for the duration of one run."""

    def __init__(self, path: str | os.PathLike[str], started_at: datetime) -> None:
        self._fd: int | None = None
        self._pid = os.getpid()
        self.path = Path(path).absolute()
        self._started_at = started_at

    @property
    def key(self) -> str:
        """Name this lock across hosts in 64 characters: runs with the same key never overlap."""
        # The directory's identity too: containers that share a host name (host networking)
        # and a lock path each lock a file of their own filesystem, and must not take the
        # other's live tasks for a dead run's.
        try:
            directory = self.path.parent.stat()
            where = f"{directory.st_dev}:{directory.st_ino}"
        except OSError:
            where = "-"  # acquire() says what is wrong with the directory
        return hashlib.sha256(f"{socket.gethostname()}:{where}:{self.path}".encode()).hexdigest()

    def acquire(self) -> None:
        """Take the lock at once, or raise LockHeld or LockFileError."""
        if self._fd is not None and self._pid == os.getpid():
            # Not reentrant: a batch started inside this run must find the lock held, as it
            # would from another process, and one release must free it.
            raise LockHeld(f"This run already holds {self.path}.")
        check_lock_path(self.path)
        try:
            # os.open's descriptors are not inherited, so children the run starts never hold it.
            fd = os.open(self.path, _OPEN_FLAGS, 0o644)
        except OSError as e:
            raise self._file_error(e) from e
        _HELD.add(fd)  # before locking, so that a fork by another thread meanwhile is covered
        try:
            try:
                _lock(fd)
            except BlockingIOError as e:
                raise LockHeld(f"Another run holds {self.path}: {self.holder().describe()}.") from e
            self._write_holder(fd)
        except BaseException as e:
            _HELD.discard(fd)
            os.close(fd)  # which frees the lock if it was taken
            if isinstance(e, OSError):
                raise self._file_error(e) from e
            raise
        self._fd, self._pid = fd, os.getpid()

    def release(self) -> None:
        """Give the lock up; the file stays so that later runs lock the same inode."""
        fd, self._fd = self._fd, None
        if fd is None or self._pid != os.getpid():
            return  # not held, or held by the parent this process was forked from
        _HELD.discard(fd)
        try:
            # Unlock before closing: a copy of `fd` in a child forked past _HELD would keep it.
            _unlock(fd)
        finally:
            os.close(fd)

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

    def _file_error(self, error: OSError) -> LockFileError:
        reason = error.strerror or str(error)
        return LockFileError(f"Cannot create the lock file {self.path}: {reason}.")

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

    def __del__(self, _suppress: type[contextlib.suppress] = contextlib.suppress) -> None:
        # A lock dropped while held is freed now, not when the process exits. `_suppress` is
        # bound at definition: at interpreter exit this module's globals may be gone already,
        # and the exit frees the lock anyway.
        with _suppress(Exception):
            self.release()
