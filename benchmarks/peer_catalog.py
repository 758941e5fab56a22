"""The peers benchmarks/peers.py measures: how to install, configure and drain each one."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DJANGO = "Django>=6.1,<6.2"
DRIVERS = {"sqlite": [], "postgresql": ["psycopg[binary]>=3.1"], "mariadb": ["mysqlclient>=2.2"]}
US = "django-cronrunner"


@dataclass(frozen=True)
class Peer:
    """How to install one task queue, configure it, and drain it."""

    requirements: list[str]
    apps: list[str]
    worker: list[str]
    finished_sql: str
    batch: bool
    kind: str = "django.tasks"
    tasks: dict[str, Any] | None = None
    vendors: tuple[str, ...] = ("sqlite", "postgresql", "mariadb")
    notes: str = ""
    empty_run: bool = field(default=True)


def task_backend(path: str, **options: Any) -> dict[str, Any]:
    return {"BACKEND": path, "OPTIONS": options} if options else {"BACKEND": path}


PEERS: dict[str, Peer] = {
    US: Peer(
        # Not editable: installed as a user's pip installs it, byte-compiled, so that a machine
        # with PYTHONDONTWRITEBYTECODE does not compile our source in every measured process.
        requirements=[str(REPO)],
        apps=["django_cronrunner"],
        tasks=task_backend("django_cronrunner.backend.CronRunnerBackend"),
        worker=["run_due_tasks", "--max-seconds", "3600"],
        finished_sql="SELECT COUNT(*) FROM cronrunner_task WHERE status = 'SUCCESSFUL'",
        batch=True,
    ),
    "django-tasks-db": Peer(
        requirements=["django-tasks-db>=0.13,<0.14"],
        apps=["django_tasks_db"],
        tasks=task_backend("django_tasks_db.DatabaseBackend"),
        worker=["db_worker", "--batch", "--no-startup-delay"],
        finished_sql=(
            "SELECT COUNT(*) FROM django_tasks_database_dbtaskresult WHERE status = 'SUCCESSFUL'"
        ),
        batch=True,
    ),
    "django-ox": Peer(
        requirements=["django-ox>=1.9,<1.10"],
        apps=["django_ox"],
        tasks=task_backend("django_ox.backend.OxBackend"),
        worker=["ox_worker", "--batch"],
        finished_sql="SELECT COUNT(*) FROM django_ox_oxtask WHERE status = 'SUCCESSFUL'",
        batch=True,
    ),
    "dj-queue": Peer(
        requirements=["dj-queue>=0.14,<0.15"],
        apps=["dj_queue"],
        tasks=task_backend("dj_queue.backend.DjQueueBackend"),
        worker=["dj_queue"],
        finished_sql="SELECT COUNT(*) FROM dj_queue_jobs WHERE finished_at IS NOT NULL",
        batch=False,
        empty_run=False,
        notes="no batch mode: its supervisor runs until stopped",
    ),
    "django-q2": Peer(
        requirements=["django-q2>=1.11,<1.12"],
        apps=["django_q"],
        kind="django-q2",
        worker=["qcluster"],
        finished_sql="SELECT COUNT(*) FROM django_q_task",
        batch=False,
        empty_run=False,
        notes="no batch mode; its own API (async_task), the ORM broker, its default workers",
    ),
    "procrastinate": Peer(
        requirements=["procrastinate[django]>=3.10,<3.11"],
        apps=["procrastinate.contrib.django"],
        kind="procrastinate",
        worker=["procrastinate", "worker", "--one-shot"],
        finished_sql="SELECT COUNT(*) FROM procrastinate_jobs WHERE status = 'succeeded'",
        batch=True,
        vendors=("postgresql",),
        notes="PostgreSQL only; its own API (defer)",
    ),
}


def baseline(ref: str) -> tuple[str, Peer]:
    """Return the name and Peer of this project as it was at git `ref`, to measure beside the
    working tree (what a change cost or bought)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = PEERS[US]
    peer = Peer(
        requirements=[f"django-cronrunner @ git+file://{REPO}@{sha}"],
        apps=ours.apps,
        tasks=ours.tasks,
        worker=ours.worker,
        finished_sql=ours.finished_sql,
        batch=ours.batch,
        notes=f"this project at {sha[:10]}",
    )
    return f"{US}@{sha[:10]}", peer
