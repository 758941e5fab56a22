"""The run lock: exclusive, non-blocking, tells who holds it, and dies with its process."""

from __future__ import annotations

import errno
import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronrunner.errors import LockFileError, LockHeld
from cronrunner.lock import RunLock
from tests.cronrunner.fakes import START

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from datetime import datetime, UTC
from cronrunner.lock import RunLock
lock = RunLock(sys.argv[1], started_at=datetime(2026, 6, 1, 12, tzinfo=UTC))
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""
# Holds the lock, starts a child that outlives it (by os.fork, or as the task isolation starts
# its children: a new session, and close_fds=False so that only O_CLOEXEC keeps the lock out),
# and prints the child's pid.
TREE = """
import os, subprocess, sys, time
from datetime import datetime, UTC
from cronrunner.lock import RunLock
lock = RunLock(sys.argv[1], started_at=datetime(2026, 6, 1, 12, tzinfo=UTC))
lock.acquire()
if sys.argv[2] == "fork":
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
else:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    child = subprocess.Popen(sleeper, close_fds=False, start_new_session=True).pid
print(child, flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Start another process that holds a lock on tmp_path/run.lock."""
    path = tmp_path / "run.lock"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    yield process, path
    process.kill()
    process.wait()


def test_a_second_run_is_told_who_holds_the_lock_at_once(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    process, path = holder
    started = time.monotonic()
    with pytest.raises(LockHeld) as caught:
        RunLock(path, started_at=START).acquire()
    assert time.monotonic() - started < 1
    message = str(caught.value)
    assert f"pid {process.pid}" in message
    assert "since 2026-06-01T12:00:00+00:00" in message
    assert path.exists()  # the loser never deletes the holder's file


def test_the_lock_dies_with_its_process(holder: tuple[subprocess.Popen[str], Path]) -> None:
    process, path = holder
    process.send_signal(signal.SIGKILL)
    process.wait()
    lock = RunLock(path, started_at=START)
    lock.acquire()
    assert lock.holder().pid == os.getpid()
    lock.release()


def test_released_lock_can_be_taken_again_and_records_the_new_holder(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    with RunLock(path, started_at=START) as lock:
        assert lock.holder().describe().startswith(f"pid {os.getpid()} on ")
        with pytest.raises(LockHeld):
            RunLock(path, started_at=START).acquire()
    inode = path.stat().st_ino  # the file stays, so that the next run locks the same inode
    with RunLock(path, started_at=START):
        assert path.stat().st_ino == inode


def opens(pid: int, path: Path) -> bool:
    """Say whether process `pid` has a descriptor open on `path`."""
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(descriptor) == str(path):
                return True
        except OSError:
            continue  # closed while we looked
    return False


@pytest.mark.parametrize("mode", ["fork", "subprocess"])
def test_the_lock_dies_with_its_process_while_a_child_it_started_lives(
    tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "run.lock"
    parent = subprocess.Popen(
        [sys.executable, "-c", TREE, str(path), mode],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        # A forked child closes its copy as it starts, which a loaded machine may delay.
        deadline = time.monotonic() + 30
        while opens(child, path):
            assert time.monotonic() < deadline, "the child kept its copy of the lock"
            time.sleep(0.05)
        # The child's closing its copy, if it had one, must not free the parent's lock.
        with pytest.raises(LockHeld, match=f"pid {parent.pid} "):
            RunLock(path, started_at=START).acquire()
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        os.kill(child, 0)  # still alive
        with RunLock(path, started_at=START) as lock:
            assert lock.holder().pid == os.getpid()
    finally:
        parent.kill()
        parent.wait()
        os.kill(child, signal.SIGKILL)


def test_two_locks_on_one_path_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    first = RunLock(path, started_at=START)
    first.acquire()
    loser = RunLock(path, started_at=START)
    with pytest.raises(LockHeld, match=rf"Another run holds .*: pid {os.getpid()} on "):
        loser.acquire()
    loser.release()  # the loser holds nothing, so this frees nothing
    first.holder()  # and reading the file (opening and closing it) keeps the lock too
    with pytest.raises(LockHeld):
        RunLock(path, started_at=START).acquire()
    first.release()
    with RunLock(path, started_at=START):
        pass


def test_acquiring_a_held_lock_again_is_refused_and_one_release_frees_it(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    lock = RunLock(path, started_at=START)
    lock.acquire()
    with pytest.raises(LockHeld, match="This run already holds"):
        lock.acquire()
    with pytest.raises(LockHeld):  # still held, by the first acquire
        RunLock(path, started_at=START).acquire()
    lock.release()
    with RunLock(path, started_at=START):
        pass
    with lock:  # and it can be taken again afterwards
        pass


def test_releasing_twice_or_without_acquiring_does_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    RunLock(path, started_at=START).release()
    lock = RunLock(path, started_at=START)
    lock.acquire()
    lock.release()
    other = RunLock(path, started_at=START)
    other.acquire()
    lock.release()  # must not free `other`'s lock, nor close its descriptor
    with pytest.raises(LockHeld):
        RunLock(path, started_at=START).acquire()
    other.release()


def test_a_lock_dropped_while_held_is_freed(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    RunLock(path, started_at=START).acquire()
    gc.collect()
    with RunLock(path, started_at=START):
        pass


def test_a_failed_holder_write_is_an_error_and_frees_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    path = tmp_path / "run.lock"
    with monkeypatch.context() as patch:
        patch.setattr(os, "pwrite", disk_full)
        with pytest.raises(LockFileError, match=r"Cannot create the lock file .*: No space left"):
            RunLock(path, started_at=START).acquire()
    with RunLock(path, started_at=START):
        pass


def test_a_symlink_at_the_lock_path_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "run.lock").symlink_to(victim)
    with pytest.raises(LockFileError, match="Cannot create the lock file"):
        RunLock(tmp_path / "run.lock", started_at=START).acquire()
    assert victim.read_text() == "precious"


def test_missing_directory_is_an_error_not_a_held_lock(tmp_path: Path) -> None:
    with pytest.raises(LockFileError, match=r"directory .*missing.* does not exist"):
        RunLock(tmp_path / "missing" / "run.lock", started_at=START).acquire()
    assert not (tmp_path / "missing").exists()  # and nothing was created on the way


def test_a_lock_path_that_cannot_be_opened_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "run.lock").mkdir()
    with pytest.raises(LockFileError, match="Cannot create the lock file"):
        RunLock(tmp_path / "run.lock", started_at=START).acquire()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_directory_is_an_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(LockFileError, match="is not writable"):
            RunLock(tmp_path / "run.lock", started_at=START).acquire()
    finally:
        tmp_path.chmod(0o700)


def test_garbled_holder_file_is_described_safely(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    path.write_text("not json")
    assert RunLock(path, started_at=START).holder().describe() == "an unknown process"
    path.write_text('["a list"]')
    assert RunLock(path, started_at=START).holder().describe() == "an unknown process"


def test_lock_key_names_host_directory_and_path(tmp_path: Path) -> None:
    first = RunLock(tmp_path / "a.lock", started_at=START)
    assert first.key == RunLock(tmp_path / "a.lock", started_at=START).key
    assert first.key != RunLock(tmp_path / "b.lock", started_at=START).key
    assert len(first.key) == 64
    # Another filesystem at the same path (a container of the same host name) is another
    # lock: here, the directory replaced by a new one.
    key = first.key
    kept = tmp_path.rename(tmp_path.with_name(tmp_path.name + "-old"))
    tmp_path.mkdir()
    assert RunLock(tmp_path / "a.lock", started_at=START).key != key
    kept.rmdir()
