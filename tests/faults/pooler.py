"""A real PgBouncer in transaction pooling mode, on a port and in a directory of its own."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.faults.fleet import require_tool

CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
admin_users = {user}
pool_mode = transaction
max_client_conn = 500
default_pool_size = 8
ignore_startup_parameters = extra_float_digits
{run_as}"""


@dataclass(frozen=True, slots=True)
class Bouncer:
    port: int
    user: str

    def show(self, what: str) -> list[dict[str, object]]:
        """Return the rows of the admin console's SHOW `what`."""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="pgbouncer", autocommit=True
        ) as admin:
            # The console speaks only the simple query protocol.
            cursor = admin.cursor()
            cursor.execute(f"SHOW {what}", prepare=False)
            names = [column.name for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def transactions(self, database: str) -> int:
        """Return how many transactions PgBouncer has passed on to `database`."""
        rows = [row for row in self.show("STATS") if row["database"] == database]
        return sum(int(str(row["total_xact_count"])) for row in rows)

    def setting(self, key: str) -> str:
        """Return one of PgBouncer's settings as it runs."""
        (value,) = [str(row["value"]) for row in self.show("CONFIG") if row["key"] == key]
        return value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def pgbouncer(host: str, port: int, user: str) -> Iterator[Bouncer]:
    """Run PgBouncer in front of the PostgreSQL server at host:port until the block ends."""
    binary = require_tool("pgbouncer")
    directory = Path(tempfile.mkdtemp(prefix="cronrunner-pgbouncer-"))
    # Run as root, PgBouncer must be told whom to become, and that user must read its files.
    run_as = ""
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
        run_as = "user = postgres\n"
    directory.chmod(0o755)
    listen_port = free_port()
    (directory / "users.txt").write_text(f'"{user}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        CONFIG.format(
            host=host,
            port=port,
            listen_port=listen_port,
            directory=directory,
            user=user,
            run_as=run_as,
        )
    )
    log = (directory / "pgbouncer.log").open("w")
    process = subprocess.Popen([binary, str(config)], stdout=log, stderr=subprocess.STDOUT)
    bouncer = Bouncer(listen_port, user)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                bouncer.show("VERSION")
                break
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PgBouncer did not start: {(directory / 'pgbouncer.log').read_text()}"
                    ) from None
                time.sleep(0.1)
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(directory, ignore_errors=True)
