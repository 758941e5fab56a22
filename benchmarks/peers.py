"""Benchmark django-cronrunner side by side with the peers a user would pick instead.

    python benchmarks/peers.py --db sqlite
    python benchmarks/peers.py --db postgresql --tasks 5000 --rounds 3
    python benchmarks/peers.py --db mariadb --connections persistent --peers django-ox,dj-queue

Each peer is installed into a venv of its own (under --venvs, made on first use) with the same
Django, and runs the same project (benchmarks/peer_project) and the same no-op task on a database
created afresh for every measurement. Per round and peer, in interleaved order: one enqueue() per
task (the rate views see), a fresh worker process draining them all (its batch mode where it has
one, which exits by itself; otherwise from its start until the last task has finished), and a
fresh batch process with nothing to do (the cost a cron-driven runner pays every minute).
Medians over the rounds are printed, with the database's durable-commit limit (one connection, a
tiny INSERT and COMMIT in a loop) and each goal of the performance issue against its figure.
Every runner uses the same durability: SQLite in WAL mode with synchronous=FULL, PostgreSQL and
MariaDB with their default (durable) commit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peer_catalog import DJANGO, DRIVERS, PEERS, REPO, US, Peer, baseline
from benchmarks.peer_report import EMPTY_RUN_STATEMENTS, report

#: What every measured process imports from this repository: only the benchmarks package, so
#: that our own package comes from its installed (byte-compiled) copy, as a user's does.
BENCHMARKS = Path(__file__).resolve().parent
NAME = "cronrunner_peers"


def database(vendor: str, directory: str) -> dict[str, Any]:
    """Return the DATABASES entry every runner of this benchmark uses on `vendor`."""
    if vendor == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(directory, f"{NAME}.sqlite3"),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
            },
        }
    if vendor == "postgresql":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": NAME,
            "USER": os.environ.get("CRONRUNNER_PG_USER", "postgres"),
            "HOST": os.environ.get("CRONRUNNER_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("CRONRUNNER_PG_PORT", "5432"),
        }
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": NAME,
        "USER": os.environ.get("CRONRUNNER_MYSQL_USER", "root"),
        "HOST": os.environ.get("CRONRUNNER_MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("CRONRUNNER_MYSQL_PORT", "3306"),
        "OPTIONS": {"charset": "utf8mb4"},
    }


def server_connection(vendor: str, settings: dict[str, Any], dbname: str | None) -> Any:
    """Return an autocommit DB-API connection to the benchmark's server."""
    if vendor == "postgresql":
        import psycopg

        return psycopg.connect(
            host=settings["HOST"],
            port=settings["PORT"],
            user=settings["USER"],
            dbname=dbname or "postgres",
            autocommit=True,
        )
    import MySQLdb

    connection = MySQLdb.connect(
        host=settings["HOST"], port=int(settings["PORT"]), user=settings["USER"], db=dbname or ""
    )
    connection.autocommit(True)
    return connection


def recreate(vendor: str, settings: dict[str, Any]) -> None:
    """Drop and create the benchmark database (delete the file, on SQLite)."""
    if vendor == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(settings["NAME"] + suffix).unlink(missing_ok=True)
        return
    connection = server_connection(vendor, settings, None)
    cursor = connection.cursor()
    cursor.execute(f"DROP DATABASE IF EXISTS {NAME}")
    cursor.execute(f"CREATE DATABASE {NAME}")
    connection.close()


def commit_limit(vendor: str, settings: dict[str, Any], seconds: float) -> float:
    """Return the durable commits per second of one connection: a tiny INSERT and COMMIT."""
    recreate(vendor, settings)
    if vendor == "sqlite":
        import sqlite3

        connection: Any = sqlite3.connect(settings["NAME"], isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        statements = ["BEGIN", "INSERT INTO probe (value) VALUES (1)", "COMMIT"]
    else:
        # Autocommit: each INSERT is its own durable transaction, one round trip.
        connection = server_connection(vendor, settings, NAME)
        statements = ["INSERT INTO probe (value) VALUES (1)"]
    cursor = connection.cursor()
    cursor.execute(
        "CREATE TABLE probe (id INTEGER PRIMARY KEY AUTO_INCREMENT, value INTEGER)"
        if vendor == "mariadb"
        else "CREATE TABLE probe (id SERIAL PRIMARY KEY, value INTEGER)"
        if vendor == "postgresql"
        else "CREATE TABLE probe (id INTEGER PRIMARY KEY, value INTEGER)"
    )
    commits = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for statement in statements:
            cursor.execute(statement)
        commits += 1
    connection.close()
    return commits / elapsed


def ensure_venv(name: str, peer: Peer, vendor: str, venvs: Path) -> Path:
    """Return the python of `name`'s venv, made and installed on first use."""
    venv = venvs / name
    requirements = [DJANGO, *peer.requirements, *DRIVERS[vendor]]
    stamp = venv / ".requirements.json"
    python = venv / "bin" / "python"
    if stamp.exists() and json.loads(stamp.read_text()) == requirements:
        if name == US:
            # Our source changes between runs: measure the working tree's.
            pip(python, "--force-reinstall", "--no-deps", str(REPO))
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"installing {name} into {venv}", file=sys.stderr)
    pip(python, *requirements)
    stamp.write_text(json.dumps(requirements))
    return python


def pip(python: Path, *arguments: str) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *arguments],
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
    )


@dataclass
class Runner:
    """One peer ready to run: its venv's python and the PEER_CONFIG its processes read."""

    name: str
    peer: Peer
    python: Path
    config: dict[str, Any]
    #: A directory holding only a link to the benchmarks package (see BENCHMARKS).
    path: Path

    def call(self, *arguments: str) -> dict[str, float]:
        env = {
            **os.environ,
            "PEER_CONFIG": json.dumps(self.config),
            "PYTHONPATH": str(self.path),
            "DJANGO_SETTINGS_MODULE": "benchmarks.peer_project.settings",
        }
        done = subprocess.run(
            [str(self.python), *arguments], cwd=self.path, env=env, capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"{self.name}: {' '.join(arguments)} failed:\n{done.stderr}")
        lines = done.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}


def import_path(directory: Path) -> Path:
    """Return a directory from which only the benchmarks package imports."""
    path = directory / "import-path"
    path.mkdir(exist_ok=True)
    link = path / BENCHMARKS.name
    if not link.exists():
        link.symlink_to(BENCHMARKS)
    return path


def runner(
    name: str,
    peer: Peer,
    python: Path,
    settings: dict[str, Any],
    conn_max_age: int | None,
    path: Path,
) -> Runner:
    lock = os.path.join(tempfile.gettempdir(), f"cronrunner-peers-{os.getpid()}.lock")
    tasks = peer.tasks
    if name.startswith(US) and tasks is not None:
        tasks = {**tasks, "OPTIONS": {"lock_file": lock}}
    config = {
        "apps": peer.apps,
        "tasks": tasks,
        "kind": peer.kind,
        "worker": peer.worker,
        "batch": peer.batch,
        "finished_sql": peer.finished_sql,
        "database": settings,
        "conn_max_age": conn_max_age,
    }
    return Runner(name, peer, python, config, path)


def measure(run: Runner, vendor: str, settings: dict[str, Any], tasks: int) -> dict[str, float]:
    """Return one round's figures for one peer on a fresh database."""
    recreate(vendor, settings)
    run.call("-m", "django", "migrate", "--verbosity", "0")
    enqueue = run.call("-m", "benchmarks.peer_driver", "enqueue", str(tasks))["seconds"]
    drained = run.call("-m", "benchmarks.peer_driver", "drain", str(tasks))
    figures = {"enqueue/s": tasks / enqueue, "drain/s": tasks / drained["seconds"]}
    if "cpu" in drained:
        figures["drain CPU us/task"] = 1e6 * drained["cpu"] / tasks
    if run.peer.empty_run:
        empties = [run.call("-m", "benchmarks.peer_driver", "empty")["seconds"] for _ in range(3)]
        figures["empty run ms"] = statistics.median(empties) * 1000
    return figures


def rounds(
    runners: list[Runner], vendor: str, settings: dict[str, Any], tasks: int, count: int
) -> dict[str, dict[str, float]]:
    """Measure every runner `count` times, interleaved; return the medians by runner."""
    samples: dict[str, list[dict[str, float]]] = {run.name: [] for run in runners}
    floors: list[float] = []
    for number in range(count):
        for run in runners:
            print(f"round {number + 1}/{count}: {run.name}", file=sys.stderr)
            samples[run.name].append(measure(run, vendor, settings, tasks))
            if run.name == US:
                statements = str(EMPTY_RUN_STATEMENTS[vendor])
                floor = run.call("-m", "benchmarks.peer_driver", "floor", statements)
                floors.append(floor["seconds"] * 1000)
    medians = {
        name: {key: statistics.median(sample[key] for sample in runs) for key in runs[0]}
        for name, runs in samples.items()
    }
    if floors:
        medians[US]["floor ms"] = statistics.median(floors)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", choices=sorted(DRIVERS), default="sqlite")
    parser.add_argument("--tasks", type=int, default=5000, help="tasks per drain")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; median shown")
    parser.add_argument(
        "--peers", default="", help="comma-separated peers (default: all that support --db)"
    )
    parser.add_argument(
        "--connections",
        choices=["per-request", "persistent", "both"],
        default="both",
        help="CONN_MAX_AGE=0 (Django's default), None (persistent), or both in turn",
    )
    parser.add_argument(
        "--venvs",
        type=Path,
        default=Path.home() / ".cache" / "cronrunner-peers",
        help="where each peer's venv is made",
    )
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="REF",
        help="also measure this project at git REF (a commit, tag or branch), e.g. to show "
        "what a change cost; may be given several times; '--peers none' leaves the peers out",
    )
    parser.add_argument("--probe-seconds", type=float, default=3.0)
    options = parser.parse_args()
    given = options.peers.split(",") if options.peers else list(PEERS)
    chosen = [name for name in given if name and name != "none"]
    unknown = sorted(set(chosen) - set(PEERS))
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {sorted(PEERS)}")
    try:
        catalog = {**PEERS, **dict(baseline(ref) for ref in options.baseline)}
    except subprocess.CalledProcessError as e:
        parser.error(f"--baseline: {e.stderr.strip()}")
    names = [
        US,
        *(name for name in catalog if name.startswith(f"{US}@")),
        *(n for n in chosen if n != US and options.db in PEERS[n].vendors),
    ]
    modes = {"per-request": [0], "persistent": [None], "both": [0, None]}[options.connections]
    with tempfile.TemporaryDirectory() as directory:
        settings = database(options.db, directory)
        pythons = {n: ensure_venv(n, catalog[n], options.db, options.venvs) for n in names}
        limit = commit_limit(options.db, settings, options.probe_seconds)
        path = import_path(Path(directory))
        for conn_max_age in modes:
            runners = [
                runner(n, catalog[n], pythons[n], settings, conn_max_age, path) for n in names
            ]
            figures = rounds(runners, options.db, settings, options.tasks, options.rounds)
            mode = "persistent connections" if conn_max_age is None else "CONN_MAX_AGE=0"
            print(
                f"\n{options.db}, {options.tasks:,} no-op tasks, median of {options.rounds} "
                f"interleaved rounds, {mode}, Python {sys.version.split()[0]}, "
                f"{os.cpu_count()} cores; durable-commit limit {limit:,.0f}/s"
            )
            print("\n".join(report(figures, catalog, limit, options.db)))


if __name__ == "__main__":
    main()
