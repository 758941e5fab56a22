"""The run lock: exclusive, non-blocking, tells who holds it, and dies with its process."""

from __future__ import annotations

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
    with RunLock(path, started_at=START):
        pass


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


def test_lock_key_names_host_and_path(tmp_path: Path) -> None:
    first = RunLock(tmp_path / "a.lock", started_at=START)
    assert first.key == RunLock(tmp_path / "a.lock", started_at=START).key
    assert first.key != RunLock(tmp_path / "b.lock", started_at=START).key
    assert len(first.key) == 64
