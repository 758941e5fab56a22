"""Project rules that a reviewer would otherwise check by hand."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("cronrunner", "django_cronrunner")
MAX_MODULE_LINES = 450


def test_the_core_never_imports_django() -> None:
    modules = sorted(
        f"cronrunner.{path.stem}"
        for path in (REPO / "cronrunner").glob("*.py")
        if path.stem != "__init__"
    )
    code = (
        f"import sys, cronrunner, {', '.join(modules)}\n"
        "leaked = sorted(n for n in sys.modules if n == 'django' or n.startswith('django.'))\n"
        "print(leaked)\n"
        "sys.exit(bool(leaked))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(modules) >= 10


@pytest.mark.django_db
def test_migrations_match_the_models() -> None:
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as e:
        pytest.fail(f"makemigrations --check found changes (exit {e.code}):\n{out.getvalue()}")


def test_one_clean_migration_set() -> None:
    migrations = sorted((REPO / "django_cronrunner" / "migrations").glob("0*.py"))
    assert [path.name for path in migrations] == ["0001_initial.py"]


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_stay_small(package: str) -> None:
    too_long = {
        str(path.relative_to(REPO)): len(path.read_text().splitlines())
        for path in (REPO / package).rglob("*.py")
        if "migrations" not in path.parts and len(path.read_text().splitlines()) > MAX_MODULE_LINES
    }
    assert too_long == {}


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_ship_their_type_marker(package: str) -> None:
    assert (REPO / package / "py.typed").exists()
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"][package]
