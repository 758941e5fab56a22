"""The compatibility matrix: Python x Django (x the django-tasks backport) on SQLite, servers on
the newest Django. `nox -l` lists the sessions; `bash scripts/test.sh` stays the everyday run."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

# Let nox find every pyenv interpreter (python3.11, python3.12, ...) without selecting them.
_PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
os.environ["PATH"] = os.pathsep.join(
    [*(str(bin_dir) for bin_dir in sorted(_PYENV.glob("3.*/bin"))), os.environ["PATH"]]
)

#: Django release -> pip requirement; 5.2 has no django.tasks and needs the backport.
DJANGO = {
    "5.2": ["Django>=5.2,<6.0", "django-tasks>=0.9,<0.13"],
    "6.0": ["Django>=6.0,<6.1"],
    "6.1": ["Django>=6.1,<6.2"],
}
#: Python versions each Django release supports, as far as we test them.
PYTHONS = {"5.2": ["3.11", "3.12", "3.13"], "6.0": ["3.12", "3.13"], "6.1": ["3.12", "3.13"]}
NEWEST = "6.1"


def install(session: nox.Session, django: str, extras: str = "test") -> None:
    session.install("-e", f".[{extras}]", *DJANGO[django])


def pytest(session: nox.Session, database: str, *paths: str) -> None:
    session.run(
        "python",
        "-m",
        "pytest",
        *(session.posargs or paths or ["tests"]),
        env={
            "CRONRUNNER_TEST_DB": database,
            "CRONRUNNER_SQLITE_TEST_NAME": f"/tmp/cronrunner-nox-{session.name}.db",
        },
    )


@nox.session
@nox.parametrize(
    ("python", "django"),
    [(python, django) for django, pythons in PYTHONS.items() for python in pythons],
)
def sqlite(session: nox.Session, django: str) -> None:
    """Run the whole suite on SQLite with one Python and one Django."""
    install(session, django)
    pytest(session, "sqlite")


@nox.session(python="3.13")
@nox.parametrize("backport", ["0.9", "0.12"])
def backport(session: nox.Session, backport: str) -> None:
    """Run the backport app's tests on the newest Django with one django-tasks release."""
    install(session, NEWEST)
    session.install(f"django-tasks~={backport}.0")
    pytest(session, "sqlite", "tests/django_cronrunner/test_backport.py")


@nox.session(python="3.13")
@nox.parametrize("database", ["postgresql", "mariadb"])
def server(session: nox.Session, database: str) -> None:
    """Run the database tests on PostgreSQL or MariaDB with the newest Django."""
    install(session, NEWEST, "test,postgresql,mysql")
    pytest(session, database, "tests/django_cronrunner", "tests/e2e", "tests/faults")
