"""Debian's real cron daemon runs, as is, the crontab line that `cronrunner_setup` prints.

The test never touches the machine's own cron. It starts a private cron daemon in a mount
namespace of its own (`unshare --mount`, so it needs root), in which an empty temporary directory
is bind-mounted over every place Debian's cron reads or writes:

- /var/spool/cron/crontabs holds one crontab, this user's, whose only line is the printed one;
- /etc/cron.d and /etc/crontab are empty, so no system job runs twice;
- /run gets the daemon's own pid file, so it neither collides with a cron daemon already running
  (Debian's cron refuses to start while another holds /run/crond.pid) nor stops it.

Outside the namespace nothing changes: no user crontab, file in /etc/cron.d or pid file is
written, and a daemon already running neither sees the line nor is signalled. The test stops the
daemon it started by its pid and checks that any other cron daemon still runs. The project lives
under a directory named with a space and a percent sign (cron turns a bare % into a newline), and
its logs/ directory does not exist until cron runs the line.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from django_cronrunner.compat import NATIVE_TASKS
from tests.e2e.conftest import wait_for
from tests.e2e.quickstart import enqueue_welcome_emails, manage, start_project

pytestmark = [
    pytest.mark.field,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the project uses its own SQLite"),
    pytest.mark.skipif(not NATIVE_TASKS, reason="the Quick start is written for Django 6"),
]

CRON = "/usr/sbin/cron"
BATCH_LINE = re.compile(
    r"^\S+ run_due_tasks: batch finished: (\d+) run \((\d+) succeeded, 0 failed\)"
    r".*; stopped: drained$"
)
# Each argument is a directory bind-mounted over the path after it, then cron runs in the
# foreground: its pid is the one this test started.
NAMESPACE_SCRIPT = """set -e
mount --bind "$1" /var/spool/cron/crontabs
mount --bind "$2" /etc/cron.d
mount --bind "$3" /etc/crontab
mount --bind "$4" /run
exec "$5" -f
"""


def require(ready: bool, reason: str) -> None:
    """Skip without `ready`, except under CI, where scripts/test.sh must have provided it."""
    if ready:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (scripts/test.sh's ensure_cron installs it under CI=true)")
    pytest.skip(reason)


def cron_daemons() -> set[int]:
    """Return the pids of every cron daemon running on this machine."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "cron":
                    pids.add(int(entry.name))
            except OSError:
                continue  # ended while we looked
    return pids


@contextmanager
def private_cron(crontab_line: str, where: Path) -> Iterator[subprocess.Popen[str]]:
    """Run a cron daemon whose only crontab is `crontab_line`, as this user; stop it by pid."""
    spool, cron_d, run = where / "crontabs", where / "cron.d", where / "run"
    for directory in (spool, cron_d, run):
        directory.mkdir(parents=True)
    system_crontab = where / "crontab"
    system_crontab.write_text("")
    user_crontab = spool / getpass.getuser()
    user_crontab.write_text(crontab_line + "\n")
    user_crontab.chmod(0o600)  # cron ignores a crontab others can read or write
    daemon = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            NAMESPACE_SCRIPT,
            "sh",
            str(spool),
            str(cron_d),
            str(system_crontab),
            str(run),
            CRON,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    try:
        wait_for(lambda: (run / "crond.pid").exists() or daemon.poll() is not None, timeout=10)
        assert daemon.poll() is None, f"cron did not start: {daemon.communicate()[0]}"
        assert int((run / "crond.pid").read_text()) == daemon.pid
        yield daemon
    finally:
        if daemon.poll() is None:
            os.kill(daemon.pid, signal.SIGTERM)
        daemon.communicate(timeout=10)


def task_rows(database: Path) -> list[tuple[str, str]]:
    """Return (status, return value) of every task in the project's database, read-only."""
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT status, return_value FROM cronrunner_task").fetchall()
    db.close()
    return sorted((str(status), str(value)) for status, value in rows)


def batches(log: Path) -> list[tuple[int, int]]:
    """Return (run, succeeded) of each batch line in the log that ran at least one task."""
    if not log.exists():
        return []
    found = []
    for line in log.read_text().splitlines():
        match = BATCH_LINE.match(line)
        if match and int(match[1]):
            found.append((int(match[1]), int(match[2])))
    return found


def test_real_cron_runs_the_printed_line_on_a_fresh_project(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "a private cron daemon needs root (a mount namespace)")
    require(Path(CRON).exists() and shutil.which("unshare") is not None, "Debian's cron is missing")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, timeout=30)
    require(probe.returncode == 0, "this host forbids mount namespaces (unshare --mount)")
    python = Path(sys.executable)
    site = tmp_path / "site 100%"
    site.mkdir()
    project = start_project(python, site)
    manage(python, project, "migrate", "--verbosity", "0")
    setup = manage(python, project, "cronrunner_setup").stdout
    printed = setup.splitlines()
    line = printed[printed.index("Crontab line (crontab -e as the site's user):") + 1].strip()
    assert line.startswith("* * * * * cd ") and "\\%" in line and ".." not in line, line
    enqueue_welcome_emails(python, project, [1, 2, 3])
    log = project / "logs" / "cronrunner.log"
    assert not log.parent.exists()  # the line itself must create it
    database = project / "db.sqlite3"
    other_daemons = cron_daemons()

    with private_cron(line, tmp_path / "cron") as daemon:
        assert daemon.pid not in other_daemons

        def diagnosis() -> str:
            return f"line: {line}\nlog: {log.read_text() if log.exists() else '(none)'}"

        try:
            wait_for(lambda: batches(log) == [(3, 3)], timeout=150)  # the first minute tick
            enqueue_welcome_emails(python, project, [4, 5])
            wait_for(lambda: batches(log) == [(3, 3), (2, 2)], timeout=100)  # the next one
        except AssertionError as e:
            raise AssertionError(diagnosis()) from e
    assert daemon.returncode is not None
    assert daemon.pid not in cron_daemons()
    assert other_daemons <= cron_daemons()  # a daemon that was running still is
    assert task_rows(database) == [
        ("SUCCESSFUL", f'"sent to user {user_id}"') for user_id in (1, 2, 3, 4, 5)
    ]
