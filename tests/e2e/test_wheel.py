"""The package as a user gets it: build the sdist and wheel, check them, install the wheel into a
fresh virtualenv and run the Quick start's project from it, far from this checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.db import connection

from tests.e2e.conftest import REPO
from tests.e2e.quickstart import enqueue_welcome_emails, manage, start_project

pytestmark = [
    pytest.mark.field,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the project uses its own SQLite"),
    pytest.mark.skipif(sys.version_info < (3, 12), reason="the Quick start needs Django 6"),
]

# Renders the dashboard (the package's own template, in the admin's) as a logged-in superuser.
RENDER_DASHBOARD = """
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client()
client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))
response = client.get("/admin/django_cronrunner/dashboard/")
print(response.status_code, *sorted({t.name for t in response.templates if t.name}))
print("dashboard says:", "Backend \\u201cdefault\\u201d" in response.content.decode())
"""

# The modules the monitoring extras bring, each from the virtualenv.
EXTRAS_IMPORT = """
import prometheus_client, sentry_sdk.crons
print(sentry_sdk.crons.__file__, prometheus_client.__file__)
"""


def run(*args: str | Path, cwd: Path) -> str:
    result = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}{result.stderr}"
    return result.stdout


def package_files() -> set[str]:
    """Return the files git tracks in the two packages: each one belongs in the wheel."""
    listed = run("git", "ls-files", "--", "cronrunner", "django_cronrunner", cwd=REPO)
    return set(listed.split())


def test_the_built_wheel_installs_and_runs_a_project(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    # build makes the sdist, then the wheel from the sdist: both must be complete.
    run(sys.executable, "-m", "build", "--outdir", dist, REPO, cwd=tmp_path)
    wheel, sdist = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheel) == 1 and len(sdist) == 1, sorted(dist.iterdir())
    checked = run(sys.executable, "-m", "twine", "check", "--strict", *wheel, *sdist, cwd=tmp_path)
    assert checked.count("PASSED") == 2, checked
    with zipfile.ZipFile(wheel[0]) as archive:
        shipped = {name for name in archive.namelist() if ".dist-info/" not in name}
    assert shipped == package_files()
    assert {
        "cronrunner/py.typed",
        "django_cronrunner/py.typed",
        "django_cronrunner/migrations/0001_initial.py",
        "django_cronrunner/templates/django_cronrunner/dashboard.html",
    } <= shipped

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    # With both monitoring extras: what `pip install 'django-cronrunner[sentry,prometheus]'` gets.
    run(python, "-m", "pip", "install", "--quiet", f"{wheel[0]}[sentry,prometheus]", cwd=tmp_path)
    extras = run(python, "-c", EXTRAS_IMPORT, cwd=tmp_path).split()
    assert all(Path(module).is_relative_to(venv) for module in extras), extras
    where = run(
        python,
        "-c",
        "import importlib.resources as r, django_cronrunner as d; "
        "print(d.__file__); print(r.files(d).joinpath('py.typed').is_file())",
        cwd=tmp_path,
    ).split()
    assert Path(where[0]).is_relative_to(venv) and where[1] == "True", where

    project = start_project(python, tmp_path)
    migrated = manage(python, project, "migrate", "django_cronrunner").stdout
    assert "Applying django_cronrunner.0001_initial... OK" in migrated
    manage(python, project, "migrate", "--verbosity", "0")
    enqueue_welcome_emails(python, project, [1, 2])
    ran = manage(python, project, "run_due_tasks", "--max-seconds", "20").stdout
    assert "batch finished: 2 run (2 succeeded, 0 failed)" in ran, ran
    rendered = manage(python, project, "shell", "-v", "0", "-c", RENDER_DASHBOARD).stdout
    status, dashboard = rendered.splitlines()
    assert status.startswith("200 ") and "django_cronrunner/dashboard.html" in status.split()
    assert dashboard == "dashboard says: True"
