"""Fixtures shared by the Django-layer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_django.fixtures import Settings


@pytest.fixture(autouse=True)
def own_lock_file(settings: Settings, tmp_path: Path) -> None:
    """Give each test's runs a lock file of their own, so no test waits on another's."""
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {**default.get("OPTIONS", {}), "lock_file": str(tmp_path / "run.lock")}
    settings.TASKS = {**settings.TASKS, "default": default}
