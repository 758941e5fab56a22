"""Tasks for runs on hosts whose clocks are faked: they wait with select, never time.sleep,
which libfaketime breaks (it rewrites the absolute deadline CPython passes to clock_nanosleep)."""

import os
import select
import time
from pathlib import Path

from django_cronrunner.compat import task


@task
def wait_for_release(log: str, release: str, most_seconds: float) -> int:
    """Note the start in `log`, wait until the file `release` exists, note the end."""
    with Path(log).open("a") as handle:
        handle.write(f"start {os.getpid()}\n")
    deadline = time.monotonic() + most_seconds
    while not Path(release).exists() and time.monotonic() < deadline:
        select.select([], [], [], 0.05)
    with Path(log).open("a") as handle:
        handle.write(f"end {os.getpid()}\n")
    return os.getpid()
